"""pipeline/settings.py: every environment variable declared once, with its default, read again
when the environment changes, a bad value named in one line, and README's table in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.argilla.config import ArgillaConfig
from pipeline.auth.settings import SessionSettings, ThrottleSettings, throttle_settings
from pipeline.errors import UserError
from pipeline.settings import ENV_NAMES, env_secret, get_settings, markdown_table

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch):
    """None of the declared variables set (the test machine may set some)."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(clean_env):
    settings = get_settings()
    assert settings.home == Path.home() / ".rlaif"
    assert settings.database_url is None and settings.argilla_api_url is None
    assert (settings.argilla_workspace, settings.argilla_dataset) == ("rlaif", "rlaif-preferences")
    assert (settings.rank, settings.world_size) == (0, 1)
    assert throttle_settings() == ThrottleSettings(5, 1.0, 900.0, 3600.0)
    assert ThrottleSettings() == ThrottleSettings(5, 1.0, 900.0, 3600.0)
    assert SessionSettings() == SessionSettings(8.0, 7.0, "auto")
    assert ArgillaConfig.from_env() == ArgillaConfig(None, None, "rlaif", "rlaif-preferences")


def test_default_database_is_sqlite_under_rlaif_home(clean_env, tmp_path):
    from db.session import database_url

    clean_env.setenv("RLAIF_HOME", str(tmp_path / "h"))
    assert database_url() == f"sqlite:///{tmp_path / 'h' / 'rlaif.db'}"
    clean_env.setenv("RLAIF_DATABASE_URL", "postgresql://u:p@host/db")
    assert database_url() == "postgresql+psycopg://u:p@host/db"


def test_the_environment_overrides_and_is_followed_without_a_reset(clean_env):
    first = get_settings()
    assert get_settings() is first  # kept while nothing changes
    clean_env.setenv("RLAIF_HOME", "~/elsewhere")
    clean_env.setenv("RLAIF_SIGNIN_FREE_FAILURES", "7")
    clean_env.setenv("RLAIF_SESSION_COOKIE_SECURE", "true")
    clean_env.setenv("WORLD_SIZE", "4")
    settings = get_settings()
    assert settings.home == Path.home() / "elsewhere"
    assert settings.session_cookie_secure == "true" and settings.world_size == 4
    assert throttle_settings().free_failures == 7
    clean_env.setenv("RLAIF_SIGNIN_FREE_FAILURES", "9")
    assert throttle_settings().free_failures == 9
    clean_env.setenv("RLAIF_SIGNIN_FREE_FAILURES", "")  # empty counts as unset
    assert throttle_settings().free_failures == 5


def test_argilla_view_and_secrets(clean_env):
    clean_env.setenv("ARGILLA_API_URL", "http://argilla:6900")
    clean_env.setenv("ARGILLA_API_KEY", "owner-key-5521")
    clean_env.setenv("ARGILLA_DATASET", "prefs")
    config = ArgillaConfig.from_env(workspace="team")
    assert (config.api_url, config.api_key) == ("http://argilla:6900", "owner-key-5521")
    assert (config.workspace, config.dataset) == ("team", "prefs")
    assert "owner-key-5521" not in repr(get_settings())
    clean_env.setenv("OPENAI_API_KEY", "sk-one")
    clean_env.setenv("MY_JUDGE_KEY", "sk-two")
    assert (env_secret("OPENAI_API_KEY"), env_secret("MY_JUDGE_KEY")) == ("sk-one", "sk-two")
    clean_env.setenv("MY_JUDGE_KEY", "")
    assert env_secret("MY_JUDGE_KEY") is None


@pytest.mark.parametrize(
    "name, value, message",
    [
        (
            "RLAIF_SIGNIN_FREE_FAILURES",
            "five",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        ("RLAIF_SESSION_IDLE_HOURS", "0", "Input should be greater than 0"),
        ("RLAIF_SESSION_COOKIE_SECURE", "yes", "Input should be 'auto', 'true' or 'false'"),
        ("WORLD_SIZE", "0", "Input should be greater than or equal to 1"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(clean_env, name, value, message):
    clean_env.setenv(name, value)
    with pytest.raises(UserError) as error:
        get_settings()
    assert str(error.value) == f"environment variable {name}={value!r}: {message}"


def test_a_bad_value_stops_the_cli_in_one_line_before_writing(clean_env, tmp_path, cli):
    clean_env.setenv("RLAIF_HOME", str(tmp_path / "home"))
    clean_env.setenv("RLAIF_SIGNIN_BACKOFF_SECONDS", "soon")
    code, out = cli("init")
    assert code == 2
    assert out.strip().splitlines() == [
        "error: environment variable RLAIF_SIGNIN_BACKOFF_SECONDS='soon': "
        "Input should be a valid number, unable to parse string as a number"
    ]
    assert not (tmp_path / "home").exists()


def test_readme_table_is_the_settings_class():
    readme = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- settings table: begin -->\n(.*?)\n<!-- settings table: end -->", readme, re.S
    )
    assert block, "README.md lost its settings table markers"
    assert block.group(1) == markdown_table(), "run `python -m pipeline.settings` for README"
    for name in ENV_NAMES:
        assert f"| `{name}` |" in block.group(1)

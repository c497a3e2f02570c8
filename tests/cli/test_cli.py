"""The `rlaif` command: fast help, no heavy imports at start-up, init."""

import subprocess
import sys

HEAVY = (
    "torch",
    "transformers",
    "trl",
    "argilla",
    "streamlit",
    "datasets",
    "openai",
    "pydantic_settings",  # pipeline/settings.py: imported by the commands that read settings
)


def test_cli_import_pulls_in_no_heavy_library():
    code = f"import sys, pipeline.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_every_command_has_help(cli):
    code, out = cli("--help")
    assert code == 0
    for command in ("init", "import", "export"):
        assert command in out
    for args in (
        ("import", "pairs", "--help"),
        ("import", "labels", "--help"),
        ("export", "preferences", "--help"),
    ):
        code, out = cli(*args)
        assert code == 0 and "Usage" in out, args


def test_init_creates_the_default_sqlite_database(rlaif_home, monkeypatch, cli):
    monkeypatch.delenv("RLAIF_DATABASE_URL", raising=False)
    code, out = cli("init")
    assert code == 0, out
    assert (rlaif_home / "rlaif.db").exists()
    from alembic.script import ScriptDirectory

    from db.session import _alembic_config

    head = ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()
    assert head and f"schema revision {head})" in out  # the newest migration, whichever it is

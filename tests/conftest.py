"""Shared fixtures: a fresh database per test (SQLite, and PostgreSQL when the test command
started one), an isolated RLAIF_HOME, offline Hugging Face, and tiny models built in code."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def postgres_server_url() -> str | None:
    """Set by scripts/test.sh, which starts a server on loopback for the run."""
    url = os.environ.get("RLAIF_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("RLAIF_TEST_POSTGRES_URL is not set: the PostgreSQL server did not start")
        pytest.skip("no PostgreSQL server (run the tests with scripts/test.sh)")
    return url


def _fresh_postgres_database(server_url: str) -> tuple[str, callable]:
    from sqlalchemy import create_engine, text

    name = f"rlaif_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server_url.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        from db.session import get_engine

        get_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture
def rlaif_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "rlaif_home"
    monkeypatch.setenv("RLAIF_HOME", str(home))
    return home


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, rlaif_home, monkeypatch) -> str:
    """A fresh, migrated, empty database, also exported as RLAIF_DATABASE_URL for the CLI."""
    from db.session import upgrade_database

    if request.param == "sqlite":
        url = f"sqlite:///{rlaif_home / 'test.db'}"
        rlaif_home.mkdir(parents=True, exist_ok=True)
        drop = None
    else:
        url, drop = _fresh_postgres_database(postgres_server_url())
    monkeypatch.setenv("RLAIF_DATABASE_URL", url)
    upgrade_database(url)
    yield url
    from db.session import get_engine

    get_engine(url).dispose()
    if drop:
        drop()


@pytest.fixture
def sqlite_url(rlaif_home, monkeypatch) -> str:
    """SQLite only, for tests whose subject is not the SQL dialect."""
    from db.session import upgrade_database

    rlaif_home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{rlaif_home / 'test.db'}"
    monkeypatch.setenv("RLAIF_DATABASE_URL", url)
    upgrade_database(url)
    return url


@pytest.fixture
def session(db_url):
    """A session in a transaction that the test may commit; the database is dropped after."""
    from db.session import get_sessionmaker

    with get_sessionmaker(db_url)() as session:
        yield session


@pytest.fixture
def cli():
    """Run `rlaif ...` in-process; returns (exit_code, stdout+stderr)."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        result = runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)
        return result.exit_code, result.output

    return run


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    from tests.helpers.tiny_models import build_causal_lm

    return build_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="session")
def tiny_rm(tmp_path_factory) -> Path:
    from tests.helpers.tiny_models import build_reward_model

    return build_reward_model(tmp_path_factory.mktemp("tiny_rm"))


@pytest.fixture(scope="session")
def judge(tiny_lm):
    """The log-prob judge on tiny_lm. A small token budget forces several left-padded batches
    of different lengths. float32 on every CPU: the tests compare its numbers to 1e-5 (`auto`
    would pick bf16 on a CPU with native bf16; tests/judging/test_dtype.py covers that)."""
    from pipeline.judging.backends.hf_logprob import HfLogprobJudge
    from pipeline.judging.config import JudgeConfig

    config = JudgeConfig(model=str(tiny_lm), device="cpu", dtype="float32", max_batch_tokens=300)
    return HfLogprobJudge(config)


@pytest.fixture
def browser(tmp_path):
    """A headless Debian chromium with a fresh profile (tests/helpers/browser_harness.py)."""
    from tests.helpers.browser_harness import new_chromium

    driver = new_chromium(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(autouse=True)
def _pytest_stays_main():
    """Streamlit's script runner (every AppTest) leaves the page it ran as
    sys.modules["__main__"]; a worker started later with multiprocessing's spawn would then run
    that page again as its own __main__ (and die on it). Put pytest's __main__ back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main

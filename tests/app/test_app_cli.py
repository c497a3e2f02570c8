"""`rlaif users ...` and `rlaif app` from the command line (the server: see the browser test)."""

from __future__ import annotations

import re
import stat

from db.session import session_scope
from pipeline.auth import users as auth
from pipeline.commands.app_cmds import admin_password_file, streamlit_command


def test_users_add_list_set(cli, sqlite_url):
    code, out = cli("users", "add", "rita", "--role", "reviewer", "--password", "s3cret-pass")
    assert code == 0 and "added rita (reviewer)" in out
    code, out = cli("users", "add", "vic", "--role", "viewer", input="pass-word-1\npass-word-1\n")
    assert code == 0, out
    code, out = cli("users", "add", "rita", "--password", "another-pass")
    assert code == 2 and "already exists" in out
    code, out = cli("users", "add", "x", "--role", "boss", "--password", "another-pass")
    assert code == 2 and "unknown role 'boss'" in out
    code, out = cli("users", "add", "y", "--password", "short")
    assert code == 2 and "at least 8 characters" in out
    code, out = cli("users", "set", "vic", "--inactive")
    assert code == 0 and "vic: viewer, inactive" in out
    code, out = cli("users", "list")
    lines = out.strip().splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["rita", "reviewer", "active"],
        ["vic", "viewer", "inactive"],
    ]
    with session_scope() as session:
        stored = session.scalar(auth.select(auth.User).where(auth.User.username == "rita"))
        assert (
            stored.password_hash.startswith("$argon2id$") and "s3cret" not in stored.password_hash
        )
        assert auth.authenticate(session, "rita", "s3cret-pass").role == "reviewer"
        assert auth.authenticate(session, "rita", "wrong-pass") is None
        assert auth.authenticate(session, "vic", "pass-word-1") is None  # inactive


def test_bootstrap_admin(cli, sqlite_url, rlaif_home):
    code, out = cli("users", "bootstrap-admin")
    assert code == 0 and "Created the admin user `admin`" in out
    path = admin_password_file(sqlite_url)
    assert re.fullmatch(r"admin-password-[0-9a-f]{8}\.txt", path.name) and path.parent == rlaif_home
    assert f"Its password is in {path}" in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with session_scope() as session:
        assert auth.authenticate(session, "admin", path.read_text().strip()).role == "admin"
    code, out = cli("users", "bootstrap-admin")
    assert code == 0 and "already exists" in out and str(path) in out
    code, out = cli("users", "set", "admin", "--role", "viewer")
    assert code == 2 and "last active admin" in out


def test_app_command_is_headless_and_hides_tracebacks():
    command = streamlit_command(8765, "127.0.0.1")
    assert command[-12:] == [
        "--server.port",
        "8765",
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]
    assert command[4].endswith("app/server.py")  # st.App: sign-in routes and middleware


def test_admin_password_file_per_database(cli, db_url, rlaif_home, monkeypatch):
    """Two databases, one RLAIF_HOME: each bootstrap writes its own file; both passwords work."""
    other_url = f"sqlite:///{rlaif_home / 'other.db'}"
    paths = {}
    for url in (db_url, other_url):
        monkeypatch.setenv("RLAIF_DATABASE_URL", url)
        code, out = cli("users", "bootstrap-admin")
        assert code == 0 and "Created the admin user `admin`" in out
        paths[url] = admin_password_file(url)
        assert f"Its password is in {paths[url]}" in out
    assert paths[db_url] != paths[other_url]
    assert sorted(rlaif_home.glob("admin-password*.txt")) == sorted(paths.values())
    for url, path in paths.items():
        with session_scope(url) as session:
            assert auth.authenticate(session, "admin", path.read_text().strip()).role == "admin"

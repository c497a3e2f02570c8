"""`rlaif app` (the review app) and `rlaif users ...` (accounts and roles)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import typer

from pipeline.commands.common import user_errors

APP_MAIN = Path(__file__).resolve().parents[2] / "app" / "main.py"
# st.App around app/main.py, with the sign-in routes and the security middleware.
APP_SERVER = APP_MAIN.parent / "server.py"
ADMIN_PASSWORD_FILE = "admin-password-{key}.txt"  # key: admin_password_key(database URL)
LEGACY_PASSWORD_FILE = "admin-password.txt"  # one file for every database: no longer written

cli = typer.Typer()
users_app = typer.Typer(help="Manage the review app's users (admin, reviewer, viewer).")
cli.add_typer(users_app, name="users")


def streamlit_command(port: int, address: str, secrets: Path | None = None) -> list[str]:
    """`streamlit run app/server.py ...`; `secrets` (single sign-on settings) is read after
    Streamlit's usual secrets files."""
    extra: list[str] = []
    if secrets is not None:
        from streamlit.config import get_config_files

        for path in [*get_config_files("secrets.toml"), str(secrets)]:
            extra += ["--secrets.files", path]
    settings = {
        "server.port": port,
        "server.address": address,
        "server.headless": "true",
        "browser.gatherUsageStats": "false",
        "client.showErrorDetails": "none",
        "client.toolbarMode": "viewer",
    }
    flags = [item for key, value in settings.items() for item in (f"--{key}", str(value))]
    return [sys.executable, "-m", "streamlit", "run", str(APP_SERVER), *extra, *flags]


@cli.command("app")
def app(
    port: int = typer.Option(8501, "--port", "-p", help="Port to serve on."),
    address: str = typer.Option("127.0.0.1", help="Address to bind (0.0.0.0 to share)."),
) -> None:
    """Start the review app (Streamlit) on http://ADDRESS:PORT."""
    with user_errors():
        from db.session import database_url, rlaif_home, session_scope
        from pipeline.auth import users as auth

        with session_scope() as session:  # migrate before the first page asks
            has_admin = auth.any_admin(session)
        typer.echo(f"database: {database_url()}")
        if not has_admin:  # first run: nobody could sign in, so create the admin now
            _bootstrap_admin()
        typer.echo(f"serving on http://{address}:{port}  (Ctrl+C stops)")
        env = {**os.environ, "PYTHONPATH": str(APP_MAIN.parents[1])}
        secrets = rlaif_home() / "secrets.toml"
        command = streamlit_command(port, address, secrets if secrets.exists() else None)
        try:
            code = subprocess.call(command, env=env)
        except KeyboardInterrupt:
            code = 0
        raise typer.Exit(code)


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Option("reviewer", "--role", "-r", help="admin, reviewer or viewer."),
    password: str | None = typer.Option(
        None, "--password", help="Password (prompted for, hidden, when left out)."
    ),
    email: str | None = typer.Option(
        None, "--email", help="E-mail that single sign-on (OIDC) maps to this user."
    ),
) -> None:
    """Add a user."""
    with user_errors():
        from db.session import session_scope
        from pipeline.auth import users as auth

        if password is None:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        with session_scope() as session:
            auth.create_user(session, username=name, password=password, role=role, email=email)
        typer.echo(f"added {name} ({role})")


@users_app.command("list")
def users_list() -> None:
    """List users with their role and whether they are active."""
    with user_errors():
        from db.session import session_scope
        from pipeline.auth import users as auth

        with session_scope() as session:
            rows = [
                (
                    u.username,
                    u.role,
                    "active" if u.active else "inactive",
                    f"{u.created_at:%Y-%m-%d}",
                )
                for u in auth.list_users(session)
            ]
        if not rows:
            typer.echo("no users yet: `rlaif users bootstrap-admin` creates the first admin")
        width = max((len(r[0]) for r in rows), default=4)
        for name, role, state, created in rows:
            typer.echo(f"{name:<{width}}  {role:<8}  {state:<8}  {created}")


@users_app.command("set")
def users_set(
    name: str = typer.Argument(..., help="User name."),
    role: str | None = typer.Option(None, "--role", help="New role."),
    active: bool | None = typer.Option(None, "--active/--inactive", help="Enable or disable."),
    reset_password: bool = typer.Option(False, "--reset-password", help="Prompt for a new one."),
    email: str | None = typer.Option(
        None, "--email", help='E-mail for single sign-on ("" removes it).'
    ),
) -> None:
    """Change a user's role, enable/disable them, reset their password or set their e-mail.
    Deactivating and resetting the password end all of the user's open sessions."""
    with user_errors():
        from db.session import session_scope
        from pipeline.auth import users as auth

        password = None
        if reset_password:
            password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        with session_scope() as session:
            user = auth.update_user(
                session,
                username=name,
                actor=None,
                role=role,
                active=active,
                password=password,
                email=email,
            )
            summary = f"{user.username}: {user.role}, {'active' if user.active else 'inactive'}"
        typer.echo(summary)


def admin_password_key(url: str) -> str:
    """8 hex digits naming one database: its URL without driver or password, so one RLAIF_HOME
    can serve several databases without one bootstrap overwriting another's password."""
    from sqlalchemy.engine import URL, make_url

    parsed = make_url(url)
    plain = URL.create(
        parsed.get_backend_name(),
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
    )
    return hashlib.sha256(plain.render_as_string().encode()).hexdigest()[:8]


def admin_password_file(url: str | None = None) -> Path:
    """Where the bootstrap admin's password for this database (default: the configured one) is
    saved: RLAIF_HOME/admin-password-<8 hex>.txt."""
    from db.session import database_url, rlaif_home

    key = admin_password_key(url or database_url())
    return rlaif_home() / ADMIN_PASSWORD_FILE.format(key=key)


def _bootstrap_admin() -> None:
    from db.session import session_scope
    from pipeline.auth import users as auth

    path = admin_password_file()
    with session_scope() as session:
        if auth.any_admin(session):
            typer.echo("An admin already exists.")
            if path.exists():
                typer.echo(f"The bootstrap admin's password is in {path}")
            elif (path.parent / LEGACY_PASSWORD_FILE).exists():
                typer.echo(
                    f"A password saved before the file was per database is in "
                    f"{path.parent / LEGACY_PASSWORD_FILE} (it may belong to another database)"
                )
            return
        password = auth.random_password()
        auth.create_user(session, username="admin", password=password, role="admin")
        # Written inside the transaction: if the file cannot be written, no admin is created.
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(password + "\n")
    typer.echo("Created the admin user `admin`.")
    typer.echo(f"Its password is in {path} (readable only by you).")
    typer.echo("Start the app with `rlaif app` and sign in as admin with that password.")


@users_app.command("bootstrap-admin")
def users_bootstrap_admin() -> None:
    """Create the first admin (`admin`, random password saved to
    RLAIF_HOME/admin-password-<8 hex of the database URL>.txt) if none exists."""
    with user_errors():
        _bootstrap_admin()

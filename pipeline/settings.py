"""Every environment variable the workbench reads, declared once: name, type, default, meaning.

    from pipeline.settings import get_settings
    get_settings().home            # RLAIF_HOME as a Path

`get_settings()` reads the environment once per state of it: it keeps the last Settings and builds
a new one only when one of the variables below changed (tests monkeypatch them freely).
`get_settings.cache_clear()` forgets the kept one. A value that does not parse raises a UserError
of one line naming the variable. README's "Configuration" table is `python -m pipeline.settings`
(tests/deploy/test_settings.py checks that it matches). The views that modules take (ArgillaConfig,
SessionSettings, ThrottleSettings) are built from this class in their own packages.

Importing this module imports pydantic-settings (~0.3 s): the CLI's command modules import it
inside the commands, never at module level, so that `rlaif --help` stays fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import UserError

UserPath = Annotated[Path, AfterValidator(lambda path: path.expanduser())]
COMPOSE = {"compose": True}  # docker-compose.yml sets it for the app (tests/deploy/test_compose.py)


def env(name: str, default: Any, description: str, compose: bool = False, **limits: Any) -> Any:
    """A field read from the environment variable `name`."""
    extra = COMPOSE if compose else None
    return Field(
        default, validation_alias=name, description=description, json_schema_extra=extra, **limits
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,  # VAR= counts as unset, as docker-compose's ${VAR:-default} does
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        validate_default=True,
    )

    # Storage
    home: UserPath = env(
        "RLAIF_HOME",
        Path("~/.rlaif"),
        "database file, model cache, snapshots, training runs, admin password files",
        compose=True,
    )
    database_url: str | None = env(
        "RLAIF_DATABASE_URL",
        None,
        "any SQLAlchemy URL, e.g. `postgresql+psycopg://user:pw@host/db`; "
        "unset: `sqlite:///$RLAIF_HOME/rlaif.db`",
        compose=True,
    )
    # Argilla (optional)
    argilla_api_url: str | None = env(
        "ARGILLA_API_URL",
        None,
        "Argilla server; with `ARGILLA_API_KEY` turns on the sync",
        compose=True,
    )
    argilla_api_key: SecretStr | None = env(
        "ARGILLA_API_KEY",
        None,
        "API key of an Argilla owner (push creates the dataset)",
        compose=True,
    )
    argilla_workspace: str = env("ARGILLA_WORKSPACE", "rlaif", "Argilla workspace", compose=True)
    argilla_dataset: str = env(
        "ARGILLA_DATASET", "rlaif-preferences", "Argilla dataset of the pairs", compose=True
    )
    argilla_home: UserPath | None = env(
        "RLAIF_ARGILLA_HOME",
        None,
        "`rlaif argilla serve`: data, logs, credentials; unset: `$RLAIF_HOME/argilla-server`",
    )
    argilla_venv: UserPath | None = env(
        "RLAIF_ARGILLA_VENV",
        None,
        "`rlaif argilla serve`: argilla-server's virtualenv; unset: `$RLAIF_ARGILLA_HOME/venv`",
    )
    # Sign-in (pipeline/auth/)
    session_idle_hours: float = env(
        "RLAIF_SESSION_IDLE_HOURS", 8.0, "a session unused this long ends", gt=0
    )
    session_max_days: float = env(
        "RLAIF_SESSION_MAX_DAYS", 7.0, "a session ends this long after sign-in, used or not", gt=0
    )
    session_cookie_secure: Literal["auto", "true", "false"] = env(
        "RLAIF_SESSION_COOKIE_SECURE",
        "auto",
        "`auto`: `Secure` cookie when the request came over HTTPS; behind a TLS proxy `true`",
    )
    signin_free_failures: int = env(
        "RLAIF_SIGNIN_FREE_FAILURES",
        5,
        "failures per user name / address before the back-off",
        ge=1,
    )
    signin_backoff_seconds: float = env(
        "RLAIF_SIGNIN_BACKOFF_SECONDS", 1.0, "first lock; doubles with every further failure", gt=0
    )
    signin_backoff_max_seconds: float = env(
        "RLAIF_SIGNIN_BACKOFF_MAX_SECONDS", 900.0, "the longest lock", gt=0
    )
    signin_forget_seconds: float = env(
        "RLAIF_SIGNIN_FORGET_SECONDS",
        3600.0,
        "a name or address without failures this long starts again at 0",
        gt=0,
    )
    # Judge
    openai_api_key: SecretStr | None = env(
        "OPENAI_API_KEY",
        None,
        "API key of the `openai` judge backend (a judge config's `api_key_env` may name another)",
    )
    # Training: set by the launcher (torchrun, accelerate launch), not by hand
    rank: int = env("RANK", 0, "this training process's rank (set by the launcher)", ge=0)
    world_size: int = env("WORLD_SIZE", 1, "training processes in all (set by the launcher)", ge=1)


ENV_NAMES: tuple[str, ...] = tuple(
    str(field.validation_alias) for field in Settings.model_fields.values()
)


def _load() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise UserError(_one_line(error)) from None


def _one_line(error: ValidationError) -> str:
    secrets = {"ARGILLA_API_KEY", "OPENAI_API_KEY"}
    problems = []
    for item in error.errors(include_url=False):
        name = str(item["loc"][0]) if item["loc"] else "environment"
        shown = "" if name in secrets else f"={item.get('input')!r}"
        problems.append(f"{name}{shown}: {item['msg']}")
    return "environment variable " + "; ".join(problems)


class _FollowsEnvironment:
    """The callable `get_settings`: one Settings per state of the variables in ENV_NAMES."""

    def __init__(self) -> None:
        self._kept: tuple[tuple[str | None, ...], Settings] | None = None

    def __call__(self) -> Settings:
        state = tuple(os.environ.get(name) for name in ENV_NAMES)
        kept = self._kept  # one read: another thread may replace it meanwhile
        if kept is not None and kept[0] == state:
            return kept[1]
        settings = _load()
        self._kept = (state, settings)
        return settings

    def cache_clear(self) -> None:
        self._kept = None


get_settings = _FollowsEnvironment()


def default_of(field: str) -> Any:
    """The declared default of a field, for the views built from Settings (one declaration)."""
    return Settings.model_fields[field].default


def env_secret(name: str) -> str | None:
    """A variable whose name a config file chooses (a judge's `api_key_env`); unset or empty:
    None. The default name, OPENAI_API_KEY, is declared in Settings."""
    if name == "OPENAI_API_KEY":
        key = get_settings().openai_api_key
        return key.get_secret_value() if key else None
    return os.environ.get(name) or None


@dataclass(frozen=True)
class EnvVar:
    """One row of README's Configuration table."""

    name: str
    type: str
    default: str
    description: str
    compose: bool


def _type_name(annotation: Any) -> str:
    """`float`, `path`, `secret`, `auto / true / false`: what README's table shows."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    origin = get_origin(annotation)
    if origin is Literal:
        return " / ".join(str(a) for a in args)
    if origin is Annotated or (args and origin is not None):  # Annotated[T, ...], T | None
        return _type_name(args[0])
    return {Path: "path", SecretStr: "secret"}.get(annotation, getattr(annotation, "__name__", ""))


def _shown(default: Any) -> str:
    if default is None:
        return "unset"
    return f"`{default:g}`" if isinstance(default, float) else f"`{default}`"


def env_vars() -> list[EnvVar]:
    return [
        EnvVar(
            name=str(field.validation_alias),
            type=_type_name(field.annotation),
            default=_shown(field.default),
            description=field.description or "",
            compose=bool(field.json_schema_extra),
        )
        for field in Settings.model_fields.values()
    ]


def markdown_table() -> str:
    lines = ["| variable | type | default | what |", "| --- | --- | --- | --- |"]
    for var in env_vars():
        lines.append(f"| `{var.name}` | {var.type} | {var.default} | {var.description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())

"""Sign-in settings: views onto the RLAIF_SESSION_* and RLAIF_SIGNIN_* variables declared in
pipeline/settings.py (see README's Configuration table). Tests build these views directly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pipeline.settings import default_of, get_settings


@dataclass(frozen=True)
class SessionSettings:
    idle_hours: float = default_of("session_idle_hours")
    max_days: float = default_of("session_max_days")
    cookie_secure: Literal["auto", "true", "false"] = default_of("session_cookie_secure")

    @property
    def idle(self) -> timedelta:
        return timedelta(hours=self.idle_hours)

    @property
    def lifetime(self) -> timedelta:
        return timedelta(days=self.max_days)


@dataclass(frozen=True)
class ThrottleSettings:
    free_failures: int = default_of("signin_free_failures")
    backoff_seconds: float = default_of("signin_backoff_seconds")
    backoff_max_seconds: float = default_of("signin_backoff_max_seconds")
    forget_seconds: float = default_of("signin_forget_seconds")


def session_settings() -> SessionSettings:
    s = get_settings()
    return SessionSettings(s.session_idle_hours, s.session_max_days, s.session_cookie_secure)


def throttle_settings() -> ThrottleSettings:
    s = get_settings()
    return ThrottleSettings(
        s.signin_free_failures,
        s.signin_backoff_seconds,
        s.signin_backoff_max_seconds,
        s.signin_forget_seconds,
    )


# Both follow the environment through get_settings; tests that set a variable used to clear
# these caches, and still may.
session_settings.cache_clear = throttle_settings.cache_clear = get_settings.cache_clear

"""Sign-in settings, read once from the environment (RLAIF_SESSION_*, RLAIF_SIGNIN_*).

RLAIF_SESSION_IDLE_HOURS=8        a session unused this long ends
RLAIF_SESSION_MAX_DAYS=7          a session ends this long after sign-in, used or not
RLAIF_SESSION_COOKIE_SECURE=auto  auto: Secure when the request came over HTTPS; or true/false
RLAIF_SIGNIN_FREE_FAILURES=5      failures per user name / per address before the back-off
RLAIF_SIGNIN_BACKOFF_SECONDS=1    first lock; doubles with every further failure
RLAIF_SIGNIN_BACKOFF_MAX_SECONDS=900
RLAIF_SIGNIN_FORGET_SECONDS=3600  a counter with no failure for this long starts again at 0
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SessionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RLAIF_SESSION_", extra="ignore")

    idle_hours: float = Field(8.0, gt=0)
    max_days: float = Field(7.0, gt=0)
    cookie_secure: Literal["auto", "true", "false"] = "auto"

    @property
    def idle(self) -> timedelta:
        return timedelta(hours=self.idle_hours)

    @property
    def lifetime(self) -> timedelta:
        return timedelta(days=self.max_days)


class ThrottleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RLAIF_SIGNIN_", extra="ignore")

    free_failures: int = Field(5, ge=1)
    backoff_seconds: float = Field(1.0, gt=0)
    backoff_max_seconds: float = Field(900.0, gt=0)
    forget_seconds: float = Field(3600.0, gt=0)


@cache
def session_settings() -> SessionSettings:
    return SessionSettings()


@cache
def throttle_settings() -> ThrottleSettings:
    return ThrottleSettings()

"""The connection to Argilla: retries with backoff, clear errors, and a SyncRun row for every
push or pull, failures included."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import argilla as rg
import httpx
from argilla._exceptions import ArgillaAPIError, ArgillaCredentialsError, ArgillaError

from db.enums import SyncStatus
from db.models import SyncRun, utcnow
from db.session import session_scope
from pipeline.argilla.config import ArgillaConfig
from pipeline.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")


class ArgillaUnavailable(UserError):
    """Argilla could not be reached or refused the request; nothing local was lost."""


@dataclass
class SyncResult:
    run_id: int = 0
    pushed: int = 0
    unchanged: int = 0  # records whose content Argilla already has: not sent again
    with_suggestion: int = 0
    judge: str | None = None
    responses_seen: int = 0
    labels_new: int = 0
    labels_changed: int = 0
    labels_withdrawn: int = 0  # submitted earlier, now draft or discarded: our label removed
    ignored: int = 0  # draft or discarded answers
    unknown_records: list[str] = field(default_factory=list)

    @property
    def pulled(self) -> int:
        return self.labels_new + self.labels_changed + self.labels_withdrawn


def _retryable(error: BaseException) -> bool:
    if isinstance(error, httpx.TransportError):
        return True
    status = getattr(error, "status_code", None)
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
    return isinstance(error, (ArgillaAPIError, httpx.HTTPStatusError)) and (
        status is None or status >= 500 or status == 429
    )


def with_retries(call: Callable[[], T], config: ArgillaConfig, what: str) -> T:
    """`call()`, retried on connection errors and 5xx/429 with exponential backoff."""
    for attempt in range(config.retries + 1):
        try:
            return call()
        except Exception as error:
            if not _retryable(error) or attempt == config.retries:
                raise
            wait = config.backoff_s * 2**attempt
            log.warning("%s failed (%s); retrying in %.1f s", what, error, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _describe(error: BaseException, config: ArgillaConfig) -> str:
    if isinstance(error, ArgillaCredentialsError) or getattr(error, "status_code", 0) == 401:
        problem = "refused the API key (check ARGILLA_API_KEY)"
    elif isinstance(error, httpx.TransportError):
        problem = f"is unreachable ({type(error).__name__}: {error})"
    else:
        problem = f"returned an error ({type(error).__name__}: {str(error)[:300]})"
    return (
        f"Argilla at {config.api_url} {problem}. Nothing was lost: the local database keeps "
        "every label, and the next `rlaif argilla sync` catches up."
    )


def connect(config: ArgillaConfig) -> rg.Argilla:
    config.require_server()
    return with_retries(
        lambda: rg.Argilla(
            api_url=config.api_url,
            api_key=config.api_key,
            timeout=int(config.timeout_s),
            retries=0,  # our backoff does the retrying
        ),
        config,
        "connect",
    )


@contextmanager
def recorded_run(direction: str, config: ArgillaConfig) -> Iterator[SyncResult]:
    """A SyncRun row for this run: committed first as `running`, then `ok` or `failed`."""
    with session_scope() as session:
        run = SyncRun(direction=direction, status=SyncStatus.RUNNING)
        session.add(run)
        session.flush()
        result = SyncResult(run_id=run.id)
    error_text: str | None = None
    try:
        yield result
    except (httpx.HTTPError, ArgillaError) as error:
        error_text = _describe(error, config)
        raise ArgillaUnavailable(error_text) from error
    except BaseException as error:
        error_text = f"{type(error).__name__}: {error}"
        raise
    finally:
        with session_scope() as session:
            run = session.get(SyncRun, result.run_id)
            run.status = SyncStatus.FAILED if error_text else SyncStatus.OK
            run.error = error_text
            run.pushed, run.pulled = result.pushed, result.pulled
            run.ended_at = utcnow()

"""The resumable chunk loop that label_pairs (runner.py, pairs) and rate_responses
(harmless_runner.py, single responses) share.

The ids still to do are split into chunks; each chunk's inputs are read, judged, and the rows
written and committed in a transaction of their own, so a run killed at any moment loses at most
the chunk in flight. A judge error fails its chunk (recorded per row, retried by the next run)
instead of stopping the run, unless MAX_FAILED_CHUNKS chunks fail in a row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlalchemy.orm import Session

from db.enums import JudgmentStatus
from db.session import session_scope
from db.upsert import chunked
from pipeline.errors import UserError

# This many failing chunks in a row means a broken set-up, so the run stops instead of failing
# everything.
MAX_FAILED_CHUNKS = 3

Input = TypeVar("Input")
Row = TypeVar("Row")


@dataclass(frozen=True)
class ChunkSteps(Generic[Input, Row]):
    """What a run does with one chunk of ids; the loop around the steps is judge_in_chunks."""

    load: Callable[[Session, Sequence[int]], Sequence[Input]]  # the inputs, in the ids' order
    judge: Callable[[Sequence[Input]], Sequence[Row]]  # may raise: the chunk then fails
    failed: Callable[[Sequence[Input], str], Sequence[Row]]  # rows recording a failed chunk
    write: Callable[[Session, Sequence[Row]], None]  # store the rows (the loop commits)
    status: Callable[[Row], str]  # the count in ChunkReport.counts a row adds to


@dataclass(frozen=True)
class ChunkOptions:
    """How a run goes through its chunks: the runners' own keyword arguments, passed on."""

    url: str | None  # the database (None: the configured one)
    chunk_size: int  # ids per judge call and commit
    progress: bool = True  # show a progress bar
    after_chunk: Callable[[int], None] | None = None  # called with each chunk's number


class ChunkReport(Protocol):
    counts: dict[str, int]  # rows per status: ok, invalid, failed
    seconds: float


def judge_in_chunks(
    todo: Sequence[int],
    steps: ChunkSteps[Input, Row],
    report: ChunkReport,
    options: ChunkOptions,
    *,
    bar_label: tuple[str, str],
) -> None:
    """Run `steps` over `todo` in chunks, one commit per chunk, counting rows and the wall time
    into `report`; `bar_label` is the progress bar's (unit, description)."""
    from tqdm import tqdm

    unit, desc = bar_label
    url = options.url
    started = time.perf_counter()
    bar = tqdm(total=len(todo), unit=unit, desc=desc, disable=not options.progress)
    failed_chunks = 0
    try:
        for number, ids in enumerate(chunked(todo, options.chunk_size)):
            with session_scope(url) as session:
                inputs = steps.load(session, ids)
            try:
                rows = steps.judge(inputs)
                failed_chunks = 0
            except Exception as error:  # e.g. CUDA out of memory: record it, never drop it
                failed_chunks += 1
                message = f"{type(error).__name__}: {error}"
                if failed_chunks >= MAX_FAILED_CHUNKS:
                    raise UserError(
                        f"the judge failed on {failed_chunks} chunks in a row, stopping: {message}"
                    ) from error
                rows = steps.failed(inputs, message)
            with session_scope(url) as session:  # one commit per chunk
                steps.write(session, rows)
            for row in rows:
                report.counts[steps.status(row)] += 1
            bar.update(len(ids))
            bar.set_postfix(
                failed=report.counts[JudgmentStatus.FAILED],
                invalid=report.counts[JudgmentStatus.INVALID],
            )
            if options.after_chunk:
                options.after_chunk(number)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - started

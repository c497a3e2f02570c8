"""The closed sets of values the database stores: statuses and queue tiers.

StrEnum/IntEnum members equal the strings and integers stored in the tables (and compare equal
to them), so reading a row back gives a value that matches the member without conversion.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class JudgmentStatus(StrEnum):
    """A judgment's outcome: a label (ok), an answer with no label in it (invalid), or an error
    (failed, retried by the next run)."""

    OK = "ok"
    INVALID = "invalid"
    FAILED = "failed"


class JobStatus(StrEnum):
    """A training job's life: queued -> running -> succeeded | failed; cancelled at any time."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class EvaluationStatus(StrEnum):
    """A policy evaluation: cancelled when its job is cancelled (or Ctrl-C) mid-run."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SyncStatus(StrEnum):
    """One Argilla push/pull/sync run."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"


class JudgeTask(StrEnum):
    """What a judge version rates (JudgeVersion.params["task"]; pairwise when absent)."""

    PAIRWISE = "pairwise"
    HARMLESS = "harmless"  # one response at a time: harmless or not


class QueueTier(IntEnum):
    """Review-queue tiers, most urgent first (a lower value sorts first)."""

    SWAP_INCONSISTENT = 0
    JUDGE_DISAGREEMENT = 1
    CONTRADICTS_HUMAN = 2
    LOW_CONFIDENCE = 3
    UNJUDGED = 4

    @property
    def reason(self) -> str:
        """The tier's machine name (Argilla metadata, exports): e.g. "swap_inconsistent"."""
        return self.name.lower()


# Job statuses in which a job still holds (or will hold) a worker.
ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
# Judgments a re-run does not redo (failed ones are retried).
SETTLED_JUDGMENT_STATUSES = (JudgmentStatus.OK, JudgmentStatus.INVALID)


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The stored strings, as plain str (for CHECK constraints written from their repr)."""
    return tuple(member.value for member in enum)

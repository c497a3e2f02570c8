"""Typed SQLAlchemy 2.0 models: the label database, one module per topic.

Data flow: prompts -> responses -> pairs -> (AI judgments | human labels) -> snapshots ->
training jobs. `Pair` carries a few denormalised queue columns (kept up to date by
`db.pair_state.refresh_pair_state`) so that the review queue is an index scan, not an
aggregate over every judgment.

Everything is re-exported here (`from db.models import Pair`), and importing this package
registers every table on Base.metadata (Alembic's env imports it).
"""

from db.models.base import (
    AI_LABELS,
    HUMAN_SOURCES,
    JOB_STATUSES,
    JUDGMENT_STATUSES,
    LABELS,
    NAMING_CONVENTION,
    ROLES,
    SYSTEM_MAX_LENGTH,
    Base,
    utcnow,
)
from db.models.harmless import (
    HARMLESS_LABELS,
    HARMLESS_VERDICTS,
    HarmlessAudit,
    HarmlessClaim,
    HarmlessJudgment,
    HarmlessLabel,
    HarmlessRun,
)
from db.models.labels import (
    AuditSample,
    AuditSampleItem,
    HumanLabel,
    JudgeVersion,
    Judgment,
    LabelAudit,
    QueueClaim,
    ResponseScore,
)
from db.models.pairs import Pair, Prompt, Response, System, system_ids
from db.models.sync import ArgillaPushed, SyncRun
from db.models.training import Evaluation, JobMetric, Snapshot, SnapshotItem, TrainingJob
from db.models.users import Setting, SignInThrottle, User, UserSession

__all__ = [
    "HARMLESS_LABELS",
    "HARMLESS_VERDICTS",
    "HarmlessAudit",
    "HarmlessClaim",
    "HarmlessJudgment",
    "HarmlessLabel",
    "HarmlessRun",
    "AI_LABELS",
    "HUMAN_SOURCES",
    "JOB_STATUSES",
    "JUDGMENT_STATUSES",
    "LABELS",
    "NAMING_CONVENTION",
    "ROLES",
    "SYSTEM_MAX_LENGTH",
    "Base",
    "utcnow",
    "Prompt",
    "Response",
    "System",
    "system_ids",
    "Pair",
    "JudgeVersion",
    "Judgment",
    "ResponseScore",
    "HumanLabel",
    "LabelAudit",
    "QueueClaim",
    "AuditSample",
    "AuditSampleItem",
    "User",
    "UserSession",
    "SignInThrottle",
    "Setting",
    "Snapshot",
    "SnapshotItem",
    "TrainingJob",
    "JobMetric",
    "Evaluation",
    "ArgillaPushed",
    "SyncRun",
]

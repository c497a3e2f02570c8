"""Typed SQLAlchemy 2.0 models: the label database.

Data flow: prompts -> responses -> pairs -> (AI judgments | human labels) -> snapshots ->
training jobs. `Pair` carries a few denormalised queue columns (kept up to date by
`db.pair_state.refresh_pair_state`) so that the review queue is an index scan, not an
aggregate over every judgment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names for Alembic (SQLAlchemy docs' recommended convention).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LABELS = ("A", "B", "tie")
AI_LABELS = (*LABELS, "invalid")
JUDGMENT_STATUSES = ("ok", "invalid", "failed")
ROLES = ("admin", "reviewer", "viewer")
HUMAN_SOURCES = ("app", "argilla", "import")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")

# Queue tiers, most urgent first (lower sorts first). Tier 9: nothing the queue should show.
TIER_SWAP_INCONSISTENT = 0
TIER_JUDGE_DISAGREEMENT = 1
TIER_CONTRADICTS_HUMAN = 2
TIER_LOW_CONFIDENCE = 3
TIER_UNJUDGED = 4


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


SYSTEM_MAX_LENGTH = 256


def _text_length(context) -> int:
    """Default of Response.text_length: the text's length in characters (code points, as
    SQLite's length() and PostgreSQL's char_length() count them). Runs for ORM and Core
    inserts alike, one row at a time in an executemany."""
    return len(context.get_current_parameters()["text"])


def _length_diff(context) -> int | None:
    """Default of Pair.length_diff for writers that do not pass it (the importer and the
    generator do): text_length of response A minus that of B, read back from the responses."""
    params = context.get_current_parameters()
    ids = (params["response_a_id"], params["response_b_id"])
    table = Response.__table__
    lengths = dict(
        context.connection.execute(
            select(table.c.id, table.c.text_length).where(table.c.id.in_(ids))
        ).all()
    )
    a, b = lengths.get(ids[0]), lengths.get(ids[1])
    return None if a is None or b is None else a - b


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Single sign-on maps a provider's verified e-mail to this user (stored lower-case).
    email: Mapped[str | None] = mapped_column(String(256), unique=True)


class UserSession(Base):
    """A signed-in browser. The cookie holds a random token; only its sha256 is stored here."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    via: Mapped[str] = mapped_column(String(16))  # password | oidc
    client_address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)  # the absolute lifetime
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class SignInThrottle(Base):
    """Failed sign-ins per user name and per client address, for the exponential back-off."""

    __tablename__ = "sign_in_throttle"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # user | address
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class Prompt(Base):
    __tablename__ = "prompts"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("prompt_id", "text_hash"),
        # Covering: length statistics read lengths without touching the (long) texts.
        Index("ix_responses_length", "id", "text_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    # Characters, filled on insert: length statistics (the judge's length bias, the
    # length-controlled win rate) read this instead of every response's text.
    text_length: Mapped[int | None] = mapped_column(Integer, default=_text_length)
    # Set for generated responses: which policy sampled it, and how.
    policy_id: Mapped[str | None] = mapped_column(String(512))
    generation_params: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


HUMAN_OUTCOME_PREDICATE = (
    "human_consensus IS NOT NULL OR override_label IS NOT NULL OR response_a_id = response_b_id"
)
LENGTH_FAR_PREDICATE = "length_diff > 30 OR length_diff < -30"


class Pair(Base):
    __tablename__ = "pairs"
    __table_args__ = (
        # The review queue: "no human label yet" first, then tier, then lowest confidence.
        Index("ix_pairs_queue", "human_label_count", "queue_tier", "min_confidence"),
        Index("ix_pairs_source_created", "source", "id"),
        # Win rates group by the ordered system pair; browse filters by either slot.
        Index("ix_pairs_systems", "system_a", "system_b"),
        Index("ix_pairs_system_b", "system_b"),
        # Partial indexes in pair order, so that the evaluation queries read only the pairs
        # they need (the predicates are repeated word for word by the queries that use them:
        # SQLite uses a partial index only when a query's WHERE has its predicate as a term).
        # Pairs with a human outcome: referenced (override or consensus) or identical responses.
        Index(
            "ix_pairs_human_outcome",
            "id",
            "human_consensus",
            "override_label",
            "response_a_id",
            "response_b_id",
            "system_a",
            "system_b",
            "source",
            "length_diff",
            sqlite_where=text(HUMAN_OUTCOME_PREDICATE),
            postgresql_where=text(HUMAN_OUTCOME_PREDICATE),
        ),
        # Pairs whose responses differ by more than the length bias's margin (30 characters).
        Index(
            "ix_pairs_length_far",
            "id",
            "length_diff",
            sqlite_where=text(LENGTH_FAR_PREDICATE),
            postgresql_where=text(LENGTH_FAR_PREDICATE),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(256), unique=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"), index=True)
    response_a_id: Mapped[int] = mapped_column(ForeignKey("responses.id"))
    response_b_id: Mapped[int] = mapped_column(ForeignKey("responses.id"))
    source: Mapped[str] = mapped_column(String(128), default="default")
    # Which system (model, policy) wrote each response; optional. Win rates use pairs with both.
    system_a: Mapped[str | None] = mapped_column(String(SYSTEM_MAX_LENGTH))
    system_b: Mapped[str | None] = mapped_column(String(SYSTEM_MAX_LENGTH))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # sha256 of prompt + both responses + metadata: re-import with other content is an error.
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Characters of response A minus those of B (NULL when a length is unknown): the length
    # statistics (win rates, the judge's length bias) read it here instead of joining the
    # responses twice per pair. Written at insert; responses are never edited.
    length_diff: Mapped[int | None] = mapped_column(Integer, default=_length_diff)

    # Denormalised state, recomputed by db.pair_state.refresh_pair_state after every label write.
    human_label_count: Mapped[int] = mapped_column(Integer, default=0)
    human_consensus: Mapped[str | None] = mapped_column(String(8), index=True)
    swap_inconsistent: Mapped[bool] = mapped_column(Boolean, default=False)
    judge_disagreement: Mapped[bool] = mapped_column(Boolean, default=False)
    contradicts_human: Mapped[bool] = mapped_column(Boolean, default=False)
    min_confidence: Mapped[float | None] = mapped_column(Float)
    queue_tier: Mapped[int] = mapped_column(Integer, default=TIER_UNJUDGED)
    # A reviewer's override: the pair's final label, above any consensus or AI label.
    override_label: Mapped[str | None] = mapped_column(String(8))
    # Optimistic concurrency: bumped on every override; a stale writer is refused.
    version: Mapped[int] = mapped_column(Integer, default=1)

    prompt: Mapped[Prompt] = relationship(lazy="joined")
    response_a: Mapped[Response] = relationship(foreign_keys=[response_a_id], lazy="joined")
    response_b: Mapped[Response] = relationship(foreign_keys=[response_b_id], lazy="joined")


class JudgeVersion(Base):
    """Everything that pins an evaluator. Any change of identity is a new version."""

    __tablename__ = "judge_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    backend: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(512))
    model_revision: Mapped[str | None] = mapped_column(String(128))
    template_hash: Mapped[str | None] = mapped_column(String(64))
    label_tokens: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # "logprob" (label-token probabilities), "sampled" (k-sample vote: weaker),
    # "reward_model", or "imported" (given by the file, not ours to vouch for).
    confidence_kind: Mapped[str] = mapped_column(String(32), default="logprob")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Judgment(Base):
    __tablename__ = "judgments"
    __table_args__ = (
        UniqueConstraint("pair_id", "judge_version_id"),
        CheckConstraint(f"status IN {JUDGMENT_STATUSES}", name="status"),
        Index("ix_judgments_judge_status", "judge_version_id", "status"),
        Index("ix_judgments_judge_queue", "judge_version_id", "swap_inconsistent", "confidence"),
        # Covering index for the alignment metrics: per-judge totals, the confidence histogram
        # and the position-bias counts are index-only scans (the table rows carry raw outputs).
        Index(
            "ix_judgments_alignment",
            "judge_version_id",
            "status",
            "label",
            "swap_inconsistent",
            "confidence",
            "p_a_ab",
            "p_a_ba",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"))
    judge_version_id: Mapped[int] = mapped_column(ForeignKey("judge_versions.id"))
    label: Mapped[str | None] = mapped_column(String(8))  # A | B | tie | invalid; None if failed
    p_a: Mapped[float | None] = mapped_column(Float)  # P(A preferred), both orders combined
    confidence: Mapped[float | None] = mapped_column(Float)
    p_a_ab: Mapped[float | None] = mapped_column(Float)  # P(A) with A shown first
    p_a_ba: Mapped[float | None] = mapped_column(Float)  # P(A) with A shown second
    swap_inconsistent: Mapped[bool | None] = mapped_column(Boolean)
    raw_output: Mapped[str | None] = mapped_column(Text)
    rationale: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="ok")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    judge_version: Mapped[JudgeVersion] = relationship(lazy="joined")


class ResponseScore(Base):
    """Direct (d-RLAIF) score of one response by one judge version, in [-1, 1]."""

    __tablename__ = "response_scores"
    __table_args__ = (UniqueConstraint("response_id", "judge_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id"))
    judge_version_id: Mapped[int] = mapped_column(ForeignKey("judge_versions.id"))
    score: Mapped[float] = mapped_column(Float)
    expected_rating: Mapped[float] = mapped_column(Float)  # sum k * P(k), 1..10
    digit_probs: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class HumanLabel(Base):
    __tablename__ = "human_labels"
    __table_args__ = (
        UniqueConstraint("pair_id", "annotator"),
        CheckConstraint(f"label IN {LABELS}", name="label"),
        CheckConstraint(f"source IN {HUMAN_SOURCES}", name="source"),
        Index("ix_human_labels_annotator", "annotator", "pair_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"))
    annotator: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class LabelAudit(Base):
    """Append-only log of every label change. Code never updates or deletes a row."""

    __tablename__ = "label_audit"
    __table_args__ = (Index("ix_label_audit_pair", "pair_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"))
    kind: Mapped[str] = mapped_column(String(16))  # human | ai | override | override_refused
    actor: Mapped[str] = mapped_column(String(256))
    old_value: Mapped[str | None] = mapped_column(String(32))
    new_value: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class QueueClaim(Base):
    """A reviewer has this pair open in the review queue. Until it expires, the queue shows
    other reviewers other pairs (with k labels required per pair, up to k may hold it)."""

    __tablename__ = "queue_claims"

    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), primary_key=True)
    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class ArgillaPushed(Base):
    """What the last successful push sent to an Argilla dataset, per pair: a re-push sends only
    records whose content changed."""

    __tablename__ = "argilla_pushed"

    target: Mapped[str] = mapped_column(String(512), primary_key=True)  # url | workspace | dataset
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(32))
    pushed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Snapshot(Base):
    """One export of merged labels; a trained model points back here."""

    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)
    n_human: Mapped[int] = mapped_column(Integer)
    n_ai: Mapped[int] = mapped_column(Integer)
    path: Mapped[str | None] = mapped_column(String(1024))  # absolute: lineage from any folder
    judge_versions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # sha256 over the exported files (pipeline.train.snapshots.content_hash); None for older
    # snapshots.
    content_hash: Mapped[str | None] = mapped_column(String(64))


class SnapshotItem(Base):
    __tablename__ = "snapshot_items"

    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id"), primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), primary_key=True)
    label_source: Mapped[str] = mapped_column(String(16))  # override | human | ai
    label: Mapped[str] = mapped_column(String(8))
    judgment_id: Mapped[int | None] = mapped_column(ForeignKey("judgments.id"))
    human_label_ids: Mapped[list[Any] | None] = mapped_column(JSON)
    p_chosen: Mapped[float] = mapped_column(Float)


class AuditSample(Base):
    """A seeded, confidence-stratified spot-check sample, stored so progress can be followed."""

    __tablename__ = "audit_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    judge_version_id: Mapped[int | None] = mapped_column(ForeignKey("judge_versions.id"))
    seed: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditSampleItem(Base):
    __tablename__ = "audit_sample_items"

    sample_id: Mapped[int] = mapped_column(ForeignKey("audit_samples.id"), primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), primary_key=True)
    stratum: Mapped[int] = mapped_column(Integer)
    # Inverse inclusion probability: weights the stratified estimate back to the pool.
    weight: Mapped[float] = mapped_column(Float)


class Setting(Base):
    """Small key/value settings edited in the app (e.g. human labels required per pair)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class TrainingJob(Base):
    __tablename__ = "training_jobs"
    __table_args__ = (CheckConstraint(f"status IN {JOB_STATUSES}", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # reward | ppo
    status: Mapped[str] = mapped_column(String(16), default="queued")
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    snapshot_id: Mapped[str | None] = mapped_column(ForeignKey("snapshots.id"))
    parent_job_id: Mapped[int | None] = mapped_column(ForeignKey("training_jobs.id"))
    created_by: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int | None] = mapped_column(Integer)
    output_dir: Mapped[str | None] = mapped_column(String(1024), unique=True)
    log_path: Mapped[str | None] = mapped_column(String(1024))
    artifacts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    final_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)


class JobMetric(Base):
    __tablename__ = "job_metrics"
    __table_args__ = (Index("ix_job_metrics_job_step", "job_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id"))
    step: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SyncRun(Base):
    """One Argilla push/pull/sync, successful or not (failures are recorded, never dropped)."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))  # push | pull | sync
    status: Mapped[str] = mapped_column(String(16))  # running | ok | failed
    pushed: Mapped[int] = mapped_column(Integer, default=0)
    pulled: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)


class Evaluation(Base):
    """One policy evaluation: a policy against a baseline on held-out prompts, judged by one
    pinned judge version. Lineage: policy run -> evaluation -> pairs (Pair.source ==
    pair_source) -> judge version; the judge's alignment with people at that moment is kept so
    the next evaluation can tell whether it drifted."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_policy_job", "policy_job_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy: Mapped[str] = mapped_column(String(SYSTEM_MAX_LENGTH))  # system name on the pairs
    policy_path: Mapped[str] = mapped_column(String(1024))
    policy_job_id: Mapped[int | None] = mapped_column(ForeignKey("training_jobs.id"))
    baseline: Mapped[str] = mapped_column(String(SYSTEM_MAX_LENGTH))
    baseline_path: Mapped[str] = mapped_column(String(1024))
    judge_version_id: Mapped[int | None] = mapped_column(ForeignKey("judge_versions.id"))
    snapshot_id: Mapped[str | None] = mapped_column(ForeignKey("snapshots.id"))
    audit_sample_id: Mapped[int | None] = mapped_column(ForeignKey("audit_samples.id"))
    pair_source: Mapped[str] = mapped_column(String(128), unique=True)
    prompt_source: Mapped[str] = mapped_column(String(1024))  # how the prompts were chosen
    n_prompts: Mapped[int] = mapped_column(Integer, default=0)
    decoding: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|succeeded|failed
    # The result (win rates) and the judge's alignment figures at this moment (for drift).
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    alignment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)

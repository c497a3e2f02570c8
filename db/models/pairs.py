"""Prompts, responses and the pairs that compare two responses to one prompt."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.enums import QueueTier
from db.models.base import SYSTEM_MAX_LENGTH, Base, utcnow
from db.upsert import upsert


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
            sa.select(table.c.id, table.c.text_length).where(table.c.id.in_(ids))
        ).all()
    )
    a, b = lengths.get(ids[0]), lengths.get(ids[1])
    return None if a is None or b is None else a - b


def system_ids(connection: sa.Connection, names: Iterable[str]) -> dict[str, int]:
    """The ids of the systems `names`, adding the ones the systems table lacks. Safe beside
    concurrent writers: ON CONFLICT DO NOTHING, then read back (names sorted, so two
    transactions adding the same new names lock them in the same order)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    table = System.__table__
    name_to_id = sa.select(table.c.name, table.c.id)
    found = dict(connection.execute(name_to_id.where(table.c.name.in_(wanted))).tuples().all())
    missing = [name for name in wanted if name not in found]
    if missing:
        upsert(connection, table, [{"name": name} for name in missing], keys=("name",))
        found.update(connection.execute(name_to_id.where(table.c.name.in_(missing))).tuples().all())
    return found


def _system_id(slot: str) -> Callable[[Any], int | None]:
    """Default of Pair.system_<slot>_id for writers that do not pass it (the importer, the
    generator and the policy evaluation do, once per batch): the id of the named system."""

    def default(context) -> int | None:
        name = context.get_current_parameters().get(f"system_{slot}")
        return None if name is None else system_ids(context.connection, [name])[name]

    return default


class System(Base):
    """A system (model, policy) named by pairs. The pairs carry its id beside its name: the
    evaluation queries read a million of them, and an integer costs a fraction of a name."""

    __tablename__ = "systems"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(SYSTEM_MAX_LENGTH), unique=True)


class Prompt(Base):
    __tablename__ = "prompts"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.Text)
    text_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (
        sa.UniqueConstraint("prompt_id", "text_hash"),
        # Covering: length statistics read lengths without touching the (long) texts.
        sa.Index("ix_responses_length", "id", "text_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(sa.ForeignKey("prompts.id"), index=True)
    text: Mapped[str] = mapped_column(sa.Text)
    text_hash: Mapped[str] = mapped_column(sa.String(64))
    # Characters, filled on insert: length statistics (the judge's length bias, the
    # length-controlled win rate) read this instead of every response's text.
    text_length: Mapped[int | None] = mapped_column(sa.Integer, default=_text_length)
    # Set for generated responses: which policy sampled it, and how.
    policy_id: Mapped[str | None] = mapped_column(sa.String(512))
    generation_params: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)


HUMAN_OUTCOME_PREDICATE = (
    "human_consensus IS NOT NULL OR override_label IS NOT NULL OR response_a_id = response_b_id"
)
LENGTH_FAR_PREDICATE = "length_diff > 30 OR length_diff < -30"


class Pair(Base):
    __tablename__ = "pairs"
    __table_args__ = (
        # The review queue: "no human label yet" first, then tier, then lowest confidence.
        sa.Index("ix_pairs_queue", "human_label_count", "queue_tier", "min_confidence"),
        sa.Index("ix_pairs_source_created", "source", "id"),
        # Win rates group by the ordered system pair; browse filters by either slot.
        sa.Index("ix_pairs_systems", "system_a", "system_b"),
        sa.Index("ix_pairs_system_b", "system_b"),
        # Partial indexes in pair order, so that the evaluation queries read only the pairs
        # they need (the predicates are repeated word for word by the queries that use them:
        # SQLite uses a partial index only when a query's WHERE has its predicate as a term).
        # Pairs with a human outcome: referenced (override or consensus) or identical responses.
        sa.Index(
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
            sqlite_where=sa.text(HUMAN_OUTCOME_PREDICATE),
            postgresql_where=sa.text(HUMAN_OUTCOME_PREDICATE),
        ),
        # Pairs whose responses differ by more than the length bias's margin (30 characters).
        sa.Index(
            "ix_pairs_length_far",
            "id",
            "length_diff",
            sqlite_where=sa.text(LENGTH_FAR_PREDICATE),
            postgresql_where=sa.text(LENGTH_FAR_PREDICATE),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(sa.String(256), unique=True)
    prompt_id: Mapped[int] = mapped_column(sa.ForeignKey("prompts.id"), index=True)
    response_a_id: Mapped[int] = mapped_column(sa.ForeignKey("responses.id"))
    response_b_id: Mapped[int] = mapped_column(sa.ForeignKey("responses.id"))
    source: Mapped[str] = mapped_column(sa.String(128), default="default")
    # Which system (model, policy) wrote each response; optional. Win rates use pairs with both.
    system_a: Mapped[str | None] = mapped_column(sa.String(SYSTEM_MAX_LENGTH))
    system_b: Mapped[str | None] = mapped_column(sa.String(SYSTEM_MAX_LENGTH))
    # The same systems as ids into `systems`, written at insert with the names (which are
    # never edited afterwards).
    system_a_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("systems.id"), default=_system_id("a")
    )
    system_b_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("systems.id"), default=_system_id("b")
    )
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON, default=dict)
    # sha256 of prompt + both responses + metadata: re-import with other content is an error.
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    # Characters of response A minus those of B (NULL when a length is unknown): the length
    # statistics (win rates, the judge's length bias) read it here instead of joining the
    # responses twice per pair. Written at insert; responses are never edited.
    length_diff: Mapped[int | None] = mapped_column(sa.Integer, default=_length_diff)

    # Denormalised state, recomputed by db.pair_state.refresh_pair_state after every label write.
    human_label_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    human_consensus: Mapped[str | None] = mapped_column(sa.String(8), index=True)
    swap_inconsistent: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    judge_disagreement: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    contradicts_human: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    min_confidence: Mapped[float | None] = mapped_column(sa.Float)
    queue_tier: Mapped[int] = mapped_column(sa.Integer, default=QueueTier.UNJUDGED)
    # A reviewer's override: the pair's final label, above any consensus or AI label.
    override_label: Mapped[str | None] = mapped_column(sa.String(8))
    # Optimistic concurrency: bumped on every override; a stale writer is refused.
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    prompt: Mapped[Prompt] = relationship(lazy="joined")
    response_a: Mapped[Response] = relationship(foreign_keys=[response_a_id], lazy="joined")
    response_b: Mapped[Response] = relationship(foreign_keys=[response_b_id], lazy="joined")

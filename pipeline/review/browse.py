"""Browse every pair with its AI and human labels; open one to see its history and override it.

Pagination, filters and sort run in SQL (LIMIT/OFFSET on an indexed order), and totals are
counted only up to COUNT_CAP, so a page costs milliseconds with 1 M pairs. Text search is a
LIKE over the prompt and both responses: it scans, but stops as soon as a page is full.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from db.enums import QueueTier
from db.labels import OverrideResult, override_pair_label
from db.models import LABELS, HumanLabel, JudgeVersion, Judgment, LabelAudit, Pair, Prompt, Response
from pipeline.auth.users import WRITE_ROLES, AuthUser, authorize
from pipeline.errors import UserError
from pipeline.review.reads import load_pairs
from pipeline.review.types import COUNT_CAP, PairView

# name -> ORDER BY; "queue" follows ix_pairs_queue, "newest"/"oldest" the primary key.
SORTS: dict[str, tuple] = {
    "newest": (Pair.id.desc(),),
    "oldest": (Pair.id.asc(),),
    "queue order": (Pair.human_label_count, Pair.queue_tier, Pair.min_confidence, Pair.id),
    # Unjudged pairs (NULL confidence) last on SQLite and PostgreSQL alike.
    "lowest confidence": (Pair.min_confidence.is_(None), Pair.min_confidence, Pair.id),
    "highest confidence": (Pair.min_confidence.is_(None), Pair.min_confidence.desc(), Pair.id),
}
HUMAN_FILTERS = ("any", "labelled", "unlabelled", *LABELS)
SEARCH_INLINE = 2_000  # up to this many matching texts, search through the prompt_id index


@dataclass(frozen=True)
class BrowseFilters:
    text: str | None = None
    source: str | None = None
    judge_version_id: int | None = None
    ai_label: str | None = None  # with judge_version_id: that judge's label; else any judge's
    human: str = "any"  # any | labelled | unlabelled | A | B | tie (the human consensus)
    overridden: bool | None = None
    swap_inconsistent: bool | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    meta_key: str | None = None
    meta_value: str | None = None
    system: str | None = None  # pairs where this system wrote either response


@dataclass(frozen=True)
class BrowseRow:
    pair_id: int
    external_id: str
    source: str
    prompt: str  # the first 200 characters
    ai_labels: str  # "judge: A (0.83)" per judge version
    human_labels: str  # "alice: A, bob: B"
    human_consensus: str | None
    override_label: str | None
    min_confidence: float | None
    swap_inconsistent: bool
    system_a: str | None = None
    system_b: str | None = None


@dataclass(frozen=True)
class BrowsePage:
    rows: list[BrowseRow]
    page: int
    page_size: int
    total: int  # capped: COUNT_CAP + 1 means "more than COUNT_CAP"
    has_next: bool


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    kind: str
    actor: str
    old_value: str | None
    new_value: str | None
    reason: str | None


@dataclass(frozen=True)
class PairDetail:
    pair: PairView
    human_labels: list[dict[str, Any]]
    history: list[AuditEntry]


def _apply(query: Select, filters: BrowseFilters, search=None) -> Select:
    if filters.source:
        query = query.where(Pair.source == filters.source)
    if filters.system:
        query = query.where(or_(Pair.system_a == filters.system, Pair.system_b == filters.system))
    if filters.meta_key:
        query = query.where(Pair.meta[filters.meta_key].as_string() == (filters.meta_value or ""))
    if filters.human == "labelled":
        query = query.where(Pair.human_label_count > 0)
    elif filters.human == "unlabelled":
        query = query.where(Pair.human_label_count == 0)
    elif filters.human in LABELS:
        query = query.where(Pair.human_consensus == filters.human)
    elif filters.human != "any":
        raise UserError(f"unknown human-label filter {filters.human!r}")
    if filters.overridden is not None:
        has = Pair.override_label.is_not(None)
        query = query.where(has if filters.overridden else ~has)
    if filters.swap_inconsistent is not None:
        query = query.where(Pair.swap_inconsistent.is_(filters.swap_inconsistent))
    judged = [Judgment.pair_id == Pair.id]
    if filters.judge_version_id is not None:
        judged.append(Judgment.judge_version_id == filters.judge_version_id)
    if filters.ai_label:
        judged.append(Judgment.label == filters.ai_label)
    if filters.judge_version_id is not None or filters.ai_label:
        if filters.min_confidence is not None:
            judged.append(Judgment.confidence >= filters.min_confidence)
        if filters.max_confidence is not None:
            judged.append(Judgment.confidence <= filters.max_confidence)
        query = query.where(exists().where(*judged))
    else:
        if filters.min_confidence is not None:
            query = query.where(Pair.min_confidence >= filters.min_confidence)
        if filters.max_confidence is not None:
            query = query.where(Pair.min_confidence <= filters.max_confidence)
    if search is not None:
        query = query.where(search)
    return query


def _search_condition(session: Session, text: str):
    """Pairs whose external id equals `text`, or whose prompt or a response contains it.

    Matching texts are found first (one LIKE scan over prompts and responses); pairs are then
    reached through the prompt_id index, since a response belongs to its prompt. A LIKE per pair
    inside the ORDER BY scan would cost seconds at 1 M pairs when the term is rare."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    prompt_hits = select(Prompt.id).where(Prompt.text.ilike(pattern, escape="\\"))
    response_hits = select(Response.id, Response.prompt_id).where(
        Response.text.ilike(pattern, escape="\\")
    )
    prompt_ids = list(session.scalars(prompt_hits.limit(SEARCH_INLINE + 1)))
    responses = session.execute(response_hits.limit(SEARCH_INLINE + 1)).all()
    if len(prompt_ids) > SEARCH_INLINE or len(responses) > SEARCH_INLINE:
        # A common term: matches are dense, so the ordered scan fills a page quickly.
        by_prompt = Pair.prompt_id.in_(prompt_hits.scalar_subquery())
        hit_ids = select(response_hits.subquery().c.id).scalar_subquery()
        by_response = or_(Pair.response_a_id.in_(hit_ids), Pair.response_b_id.in_(hit_ids))
        return or_(Pair.external_id == text, by_prompt, by_response)
    response_ids = [r.id for r in responses]
    return or_(
        Pair.external_id == text,
        Pair.prompt_id.in_(prompt_ids),
        and_(
            Pair.prompt_id.in_(sorted({r.prompt_id for r in responses})),
            or_(Pair.response_a_id.in_(response_ids), Pair.response_b_id.in_(response_ids)),
        ),
    )


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def browse(
    session: Session,
    *,
    filters: BrowseFilters = BrowseFilters(),
    sort: str = "newest",
    page: int = 1,
    page_size: int = 50,
) -> BrowsePage:
    if sort not in SORTS:
        raise UserError(f"unknown sort {sort!r}: expected one of {', '.join(SORTS)}")
    page, page_size = max(1, page), max(1, min(page_size, 500))
    text = (filters.text or "").strip()
    search = _search_condition(session, text) if text else None
    ids_query = _apply(select(Pair.id), filters, search).order_by(*SORTS[sort])
    ids = list(session.scalars(ids_query.offset((page - 1) * page_size).limit(page_size + 1)))
    has_next = len(ids) > page_size
    ids = ids[:page_size]
    capped = _apply(select(Pair.id), filters, search).limit(COUNT_CAP + 1).subquery()
    total = session.scalar(select(func.count()).select_from(capped))
    views = {v.pair_id: v for v in load_pairs(session, ids)}
    humans: dict[int, list[str]] = {}
    systems: dict[int, tuple[str | None, str | None]] = {}
    if ids:
        query = select(Pair.id, Pair.system_a, Pair.system_b).where(Pair.id.in_(ids))
        systems = {pair_id: (a, b) for pair_id, a, b in session.execute(query)}
        for pair_id, annotator, label in session.execute(
            select(HumanLabel.pair_id, HumanLabel.annotator, HumanLabel.label)
            .where(HumanLabel.pair_id.in_(ids))
            .order_by(HumanLabel.id)
        ):
            humans.setdefault(pair_id, []).append(f"{annotator}: {label}")
    rows = []
    for pair_id in ids:
        view = views[pair_id]
        ai = ", ".join(
            f"{j.judge_name}: {j.label or j.status} ({_fmt(j.confidence)})" for j in view.judgments
        )
        rows.append(
            BrowseRow(
                pair_id=pair_id,
                external_id=view.external_id,
                source=view.source,
                prompt=view.prompt[:200],
                ai_labels=ai,
                human_labels=", ".join(humans.get(pair_id, [])),
                human_consensus=view.human_consensus,
                override_label=view.override_label,
                min_confidence=view.min_confidence,
                swap_inconsistent=view.queue_tier == QueueTier.SWAP_INCONSISTENT,
                system_a=systems[pair_id][0],
                system_b=systems[pair_id][1],
            )
        )
    return BrowsePage(rows=rows, page=page, page_size=page_size, total=total, has_next=has_next)


def pair_detail(session: Session, pair_id: int) -> PairDetail:
    views = load_pairs(session, [pair_id])
    if not views:
        raise UserError(f"no pair with id {pair_id}")
    labels = [
        {
            "annotator": h.annotator,
            "label": h.label,
            "note": h.note,
            "source": h.source,
            "at": h.updated_at,
        }
        for h in session.scalars(
            select(HumanLabel).where(HumanLabel.pair_id == pair_id).order_by(HumanLabel.id)
        )
    ]
    history = [
        AuditEntry(a.at, a.kind, a.actor, a.old_value, a.new_value, a.reason)
        for a in session.scalars(
            select(LabelAudit).where(LabelAudit.pair_id == pair_id).order_by(LabelAudit.id)
        )
    ]
    return PairDetail(pair=views[0], human_labels=labels, history=history)


def override(
    session: Session,
    *,
    user: AuthUser,
    pair_id: int,
    label: str,
    reason: str,
    expected_version: int,
) -> OverrideResult:
    """Set the pair's final label. Reviewers and admins; a reason is required. A stale
    `expected_version` (someone saved first) returns applied=False with a clear message."""
    authorize(session, user, *WRITE_ROLES)
    if label not in LABELS:
        raise UserError(f"not a label: {label!r} (expected A, B or tie)")
    if not (reason or "").strip():
        raise UserError("an override needs a reason")
    if session.get(Pair, pair_id) is None:
        raise UserError(f"no pair with id {pair_id}")
    return override_pair_label(
        session,
        pair_id=pair_id,
        actor=user.username,
        label=label,
        reason=reason,
        expected_version=expected_version,
    )


def judge_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(JudgeVersion.id, JudgeVersion.name)).all())


def system_choices(session: Session, limit: int = 500) -> list[str]:
    """Every system named on a pair (either slot), for the filter widget; via the indexes."""
    first = select(Pair.system_a.label("system")).where(Pair.system_a.is_not(None)).distinct()
    second = select(Pair.system_b.label("system")).where(Pair.system_b.is_not(None)).distinct()
    union = first.union(second).subquery()
    return list(session.scalars(select(union.c.system).order_by(union.c.system).limit(limit)))

"""Rate responses: people rate single responses of a system harmless or harmful (or skip), the
human side of the harmless rate (pipeline/evaluation/harmless_rate.py).

Order: each system's responses come in a fixed pseudo-random order (a multiplicative hash of
the response id), those nobody has rated first, never one the reviewer rated or skipped. So the
people-rated responses are a random draw of the system's, which the PPI-corrected rate needs;
an order by the judge's confidence would bias it. Writes need the reviewer or admin role,
checked here where the write happens, and go through db/harmless.py (locked, audited).

A reviewer holds the response they have open (HarmlessClaim, like the review queue's claims in
review/claims.py): two reviewers rating one system at once are shown different responses.
Choosing and holding are one step: on PostgreSQL the candidate response is locked with
`FOR NO KEY UPDATE SKIP LOCKED` and the claims are read again under the lock; on SQLite the
first write (deleting expired claims) takes the database write lock before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import BigInteger, cast, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from db.harmless import SKIP_KIND, record_harmless_skip, upsert_harmless_label
from db.models import (
    HARMLESS_LABELS,
    HarmlessAudit,
    HarmlessClaim,
    HarmlessJudgment,
    HarmlessLabel,
    JudgeVersion,
    Pair,
    Prompt,
    Response,
    utcnow,
)
from pipeline.auth.users import WRITE_ROLES, AuthUser, authorize
from pipeline.errors import UserError
from pipeline.evaluation.harmless_rate import system_responses
from pipeline.review import claims

HASH_MULTIPLIER, HASH_MODULUS = 2654435761, 2**32  # Knuth's multiplicative hash
CLAIM_TTL_S = 600  # a response open on the page is held this long (renewed on every rerun)
CLAIM_CANDIDATES, CLAIM_ROUNDS = 5, 4  # responses tried per read; reads before giving up


@dataclass(frozen=True)
class VerdictView:
    judge_name: str
    verdict: str | None
    p_harmless: float | None
    confidence: float | None
    status: str
    error: str | None


@dataclass(frozen=True)
class ResponseView:
    """What a reviewer sees of one response."""

    response_id: int
    system: str
    prompt: str
    response: str
    human_ratings: int
    verdicts: list[VerdictView] = field(default_factory=list)


@dataclass(frozen=True)
class RateProgress:
    responses: int  # the system's responses
    rated: int  # with at least one person's rating
    by_you: int  # rated by this reviewer


def systems(session: Session) -> list[str]:
    slots = system_responses()
    return list(session.scalars(select(slots.c.system).distinct().order_by(slots.c.system)))


def _shuffle_key(response_id):
    return (cast(response_id, BigInteger) * HASH_MULTIPLIER) % HASH_MODULUS


def _candidates(
    session: Session, username: str, system: str, limit: int, exclude=(), free_only=False
) -> list[tuple[int, bool]]:
    """(response id, rated by anyone) of the responses of `system` left for `username`, in the
    page's order (see the docstring)."""
    slots = system_responses([system])
    rid = slots.c.response_id
    done_by_you = or_(
        exists().where(HarmlessLabel.response_id == rid, HarmlessLabel.annotator == username),
        exists().where(
            HarmlessAudit.response_id == rid,
            HarmlessAudit.actor == username,
            HarmlessAudit.kind == SKIP_KIND,
        ),
    )
    rated = exists().where(HarmlessLabel.response_id == rid)
    query = select(rid, rated).where(~done_by_you)
    if free_only:
        query = query.where(~_held_by_others(rid, username))
    if exclude:
        query = query.where(rid.not_in(list(exclude)))
    # False (nobody rated it) sorts first, then the fixed pseudo-random order.
    rows = session.execute(query.order_by(rated, _shuffle_key(rid), rid).limit(limit))
    return [(response_id, bool(was_rated)) for response_id, was_rated in rows]


def _held_by_others(response_id, username: str):
    return exists().where(
        HarmlessClaim.response_id == response_id,
        HarmlessClaim.username != username,
        HarmlessClaim.expires_at > utcnow(),
    )


def next_response(session: Session, *, username: str, system: str) -> ResponseView | None:
    """The next response of `system` for `username` (no claim: for readers), or None."""
    rows = _candidates(session, username, system, 1)
    return response_view(session, rows[0][0], system) if rows else None


def claim_next_response(
    session: Session, *, username: str, system: str, ttl_s: float = CLAIM_TTL_S
) -> ResponseView | None:
    """The next response of `system` that no other reviewer holds, held for `username` for
    `ttl_s` seconds (a reviewer holds one response at a time); None when none is left."""
    session.execute(delete(HarmlessClaim).where(HarmlessClaim.expires_at <= utcnow()))
    tried: set[int] = set()
    for _ in range(CLAIM_ROUNDS):
        rows = _candidates(session, username, system, CLAIM_CANDIDATES, tried, free_only=True)
        for response_id, was_rated in rows:
            if _try_hold(session, username, response_id, ttl_s, was_rated):
                return response_view(session, response_id, system)
            tried.add(response_id)
        if len(rows) < CLAIM_CANDIDATES:
            break
    _hold(session, username, None, ttl_s)
    return None


def _try_hold(
    session: Session, username: str, response_id: int, ttl_s: float, was_rated: bool
) -> bool:
    """Hold the response unless another reviewer is claiming, rating or holding it right now,
    or rated it since it was picked as an unrated one (it no longer comes first)."""
    if session.get_bind().dialect.name == "postgresql":
        locked = (
            select(Response.id)
            .where(Response.id == response_id)
            .with_for_update(key_share=True, skip_locked=True)
        )
        if session.scalar(locked) is None:
            return False
    # A fresh statement after the lock: it sees the claims and ratings committed before it.
    rated_now = exists().where(HarmlessLabel.response_id == response_id)
    held, rated = session.execute(select(_held_by_others(response_id, username), rated_now)).one()
    if held or (rated and not was_rated):
        return False
    _hold(session, username, response_id, ttl_s)
    return True


def _hold(session: Session, username: str, response_id: int | None, ttl_s: float) -> None:
    """`username` holds `response_id` (None: nothing) and no other response."""
    claims.hold_item(session, HarmlessClaim, "response_id", username, response_id, ttl_s)


def _release(session: Session, username: str, response_id: int) -> None:
    claims.release_item(session, HarmlessClaim, "response_id", username, response_id)


def response_view(session: Session, response_id: int, system: str) -> ResponseView:
    response = session.get(Response, response_id)
    prompt = session.get(Prompt, response.prompt_id)
    ratings = session.scalar(select(func.count()).where(HarmlessLabel.response_id == response_id))
    verdicts = [
        VerdictView(name, verdict, p, confidence, status, error)
        for name, verdict, p, confidence, status, error in session.execute(
            select(
                JudgeVersion.name,
                HarmlessJudgment.verdict,
                HarmlessJudgment.p_harmless,
                HarmlessJudgment.confidence,
                HarmlessJudgment.status,
                HarmlessJudgment.error,
            )
            .join(JudgeVersion, JudgeVersion.id == HarmlessJudgment.judge_version_id)
            .where(HarmlessJudgment.response_id == response_id)
            .order_by(JudgeVersion.id)
        )
    ]
    return ResponseView(response_id, system, prompt.text, response.text, ratings, verdicts)


def progress(session: Session, *, username: str, system: str) -> RateProgress:
    slots = system_responses([system])
    rid = slots.c.response_id
    rated = exists().where(HarmlessLabel.response_id == rid)
    yours = exists().where(HarmlessLabel.response_id == rid, HarmlessLabel.annotator == username)
    row = session.execute(
        select(func.count(), func.count().filter(rated), func.count().filter(yours)).select_from(
            slots
        )
    ).one()
    return RateProgress(*row)


def _check_response(session: Session, response_id: int) -> None:
    in_a_system = exists().where(
        or_(
            (Pair.response_a_id == response_id) & Pair.system_a.is_not(None),
            (Pair.response_b_id == response_id) & Pair.system_b.is_not(None),
        )
    )
    if not session.scalar(select(in_a_system)):
        raise UserError(f"no response with id {response_id} in a system's pairs")


def record_rating(
    session: Session, *, user: AuthUser, response_id: int, label: str, note: str | None = None
) -> bool:
    """Store `user`'s rating (harmless or harmful) of a response. Reviewers and admins only."""
    authorize(session, user, *WRITE_ROLES)
    if label not in HARMLESS_LABELS:
        raise UserError(f"not a rating: {label!r} (expected harmless or harmful)")
    _check_response(session, response_id)
    note = (note or "").strip() or None
    _release(session, user.username, response_id)
    return upsert_harmless_label(
        session,
        response_id=response_id,
        annotator=user.username,
        label=label,
        source="app",
        note=note,
    )


def record_skip(
    session: Session, *, user: AuthUser, response_id: int, note: str | None = None
) -> None:
    """`user` passes on this response: it leaves their list (others still see it); logged."""
    authorize(session, user, *WRITE_ROLES)
    _check_response(session, response_id)
    _release(session, user.username, response_id)
    record_harmless_skip(session, response_id=response_id, annotator=user.username, note=note)

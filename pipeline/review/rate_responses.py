"""Rate responses: people rate single responses of a system harmless or harmful (or skip), the
human side of the harmless rate (pipeline/evaluation/harmless_rate.py).

Order: each system's responses come in a fixed pseudo-random order (a multiplicative hash of
the response id), those nobody has rated first, never one the reviewer rated or skipped. So the
people-rated responses are a random draw of the system's, which the PPI-corrected rate needs;
an order by the judge's confidence would bias it. Writes need the reviewer or admin role,
checked here where the write happens, and go through db/harmless.py (locked, audited).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import BigInteger, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from db.harmless import SKIP_KIND, record_harmless_skip, upsert_harmless_label
from db.models import (
    HARMLESS_LABELS,
    HarmlessAudit,
    HarmlessJudgment,
    HarmlessLabel,
    JudgeVersion,
    Pair,
    Prompt,
    Response,
)
from pipeline.auth.users import WRITE_ROLES, AuthUser, authorize
from pipeline.errors import UserError
from pipeline.evaluation.harmless_rate import system_responses

HASH_MULTIPLIER, HASH_MODULUS = 2654435761, 2**32  # Knuth's multiplicative hash


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


def next_response(session: Session, *, username: str, system: str) -> ResponseView | None:
    """The next response of `system` for `username`, or None when none is left."""
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
    query = (
        select(rid)
        .where(~done_by_you)
        .order_by(rated, _shuffle_key(rid), rid)  # False (nobody rated it) sorts first
        .limit(1)
    )
    response_id = session.scalar(query)
    return None if response_id is None else response_view(session, response_id, system)


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
    record_harmless_skip(session, response_id=response_id, annotator=user.username, note=note)

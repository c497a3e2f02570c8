"""Spot-check samples: a seeded sample of N pairs, stratified by the judge's confidence.

The review queue shows the hardest pairs first, so agreement measured on it is biased low. A
random sample is not: each stratum h (a confidence bin) of N_h judged pairs gets n_h draws
(proportional allocation, at least one per non-empty bin), each carrying the inverse inclusion
probability N_h / n_h as its weight. Once labelled, the post-stratified agreement
sum_h W_h * p_h (W_h = N_h / N) estimates the judge's pool-wide agreement with people, with the
stratified standard error (finite-population corrected).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.enums import JudgmentStatus
from db.models import AuditSample, AuditSampleItem, JudgeVersion, Judgment, Pair
from pipeline.auth.users import WRITE_ROLES, AuthUser, authorize
from pipeline.errors import UserError

BIN_EDGES = (0.6, 0.7, 0.8, 0.9)  # confidence in [0.5, 1]: < 0.6, 0.6-0.7, ..., >= 0.9
NO_CONFIDENCE = len(BIN_EDGES) + 1  # invalid / failed / no confidence: a stratum of its own
MAX_SAMPLE = 100_000


def stratum_of(confidence: float | None, status: str = JudgmentStatus.OK) -> int:
    if status != JudgmentStatus.OK or confidence is None:
        return NO_CONFIDENCE
    return sum(confidence >= edge for edge in BIN_EDGES)


def stratum_label(stratum: int) -> str:
    if stratum == NO_CONFIDENCE:
        return "invalid/failed"
    if stratum == 0:
        return f"< {BIN_EDGES[0]:.1f}"
    if stratum == len(BIN_EDGES):
        return f">= {BIN_EDGES[-1]:.1f}"
    return f"{BIN_EDGES[stratum - 1]:.1f}-{BIN_EDGES[stratum]:.1f}"


def allocate(population: dict[int, int], size: int) -> dict[int, int]:
    """Proportional allocation by largest remainder, at least one per non-empty stratum when
    `size` allows, never more than a stratum holds."""
    strata = {h: n for h, n in population.items() if n > 0}
    total = sum(strata.values())
    size = min(size, total)
    if size <= 0:
        return {}
    quota = {h: size * n / total for h, n in strata.items()}
    alloc = {h: min(strata[h], math.floor(q)) for h, q in quota.items()}
    if size >= len(strata):
        alloc = {h: max(1, a) for h, a in alloc.items()}
    while sum(alloc.values()) < size:
        h = max(
            (h for h in strata if alloc[h] < strata[h]), key=lambda h: (quota[h] - alloc[h], -h)
        )
        alloc[h] += 1
    while sum(alloc.values()) > size:
        h = min((h for h in strata if alloc[h] > 1), key=lambda h: (quota[h] - alloc[h], h))
        alloc[h] -= 1
    return {h: a for h, a in alloc.items() if a > 0}


def draw_audit_sample(
    session: Session,
    *,
    user: AuthUser,
    judge_version_id: int,
    size: int,
    seed: int,
    name: str | None = None,
    comparison: tuple[str, str] | None = None,
) -> AuditSample:
    """Draw and store a sample of `size` pairs judged by `judge_version_id` (only pairs between
    the two systems of `comparison`, either slot, when given). Same seed, same judgments ->
    same sample."""
    actor = authorize(session, user, *WRITE_ROLES)
    return store_audit_sample(
        session,
        created_by=actor.username,
        judge_version_id=judge_version_id,
        size=size,
        seed=seed,
        name=name,
        comparison=comparison,
    )


def _pool_by_stratum(
    session: Session,
    judge_version_id: int,
    comparison: tuple[str, str] | None,
    pair_source: str | None,
) -> dict[int, list[int]]:
    """The pairs this judge judged (of `comparison`'s systems, of `pair_source`), by stratum,
    in pair id order."""
    by_stratum: dict[int, list[int]] = {}
    query = select(Judgment.pair_id, Judgment.confidence, Judgment.status).where(
        Judgment.judge_version_id == judge_version_id
    )
    if comparison or pair_source:
        query = query.join(Pair, Pair.id == Judgment.pair_id)
    if pair_source:
        query = query.where(Pair.source == pair_source, Pair.response_a_id != Pair.response_b_id)
    if comparison:
        first, second = comparison
        query = query.where(
            ((Pair.system_a == first) & (Pair.system_b == second))
            | ((Pair.system_a == second) & (Pair.system_b == first))
        )
    rows = session.execute(query.order_by(Judgment.pair_id))
    for pair_id, confidence, status in rows:
        by_stratum.setdefault(stratum_of(confidence, status), []).append(pair_id)
    return by_stratum


def store_audit_sample(
    session: Session,
    *,
    created_by: str,
    judge_version_id: int,
    size: int,
    seed: int,
    name: str | None = None,
    comparison: tuple[str, str] | None = None,
    pair_source: str | None = None,
) -> AuditSample:
    """draw_audit_sample without the role check, for callers that made it (a policy
    evaluation, started by an admin); `pair_source` limits the pool to that source tag's pairs
    of two different responses (identical ones are ties by construction: nothing to check)."""
    if not 1 <= size <= MAX_SAMPLE:
        raise UserError(f"the sample size must be 1..{MAX_SAMPLE:,}")
    judge = session.get(JudgeVersion, judge_version_id)
    if judge is None:
        raise UserError(f"no judge version with id {judge_version_id}")
    scope = f" {comparison[0]} vs {comparison[1]}" if comparison else ""
    name = (name or "").strip() or f"{judge.name}{scope} n={size} seed={seed}"
    if session.scalar(select(AuditSample.id).where(AuditSample.name == name)) is not None:
        raise UserError(f"a sample named {name!r} already exists")
    by_stratum = _pool_by_stratum(session, judge_version_id, comparison, pair_source)
    if not by_stratum:
        between = f" between {comparison[0]} and {comparison[1]}" if comparison else ""
        raise UserError(f"judge {judge.name} has judged no pairs{between} yet")
    alloc = allocate({h: len(ids) for h, ids in by_stratum.items()}, size)
    rng = random.Random(seed)
    sample = AuditSample(
        name=name,
        judge_version_id=judge_version_id,
        seed=seed,
        size=sum(alloc.values()),
        created_by=created_by,
    )
    session.add(sample)
    session.flush()
    items = []
    for stratum in sorted(alloc):
        population = by_stratum[stratum]
        weight = len(population) / alloc[stratum]
        for pair_id in sorted(rng.sample(population, alloc[stratum])):
            items.append(
                {"sample_id": sample.id, "pair_id": pair_id, "stratum": stratum, "weight": weight}
            )
    session.execute(AuditSampleItem.__table__.insert(), items)
    return sample


@dataclass(frozen=True)
class StratumResult:
    stratum: int
    label: str
    population: int  # N_h: judged pairs in this bin when drawn (sum of weights)
    sampled: int  # n_h
    labelled: int  # m_h: sampled pairs with a human (or override) label
    agree: int  # of those, where the judge's label equals the human label


@dataclass(frozen=True)
class SampleResult:
    id: int
    name: str
    judge_version_id: int | None
    judge_name: str | None
    seed: int
    size: int
    created_by: str
    created_at: datetime
    strata: list[StratumResult]
    # Post-stratified agreement over strata with >= 1 label; None until a pair is labelled.
    estimate: float | None
    std_error: float | None
    unweighted: float | None  # plain agreement over the labelled items, for comparison

    @property
    def labelled(self) -> int:
        return sum(s.labelled for s in self.strata)

    @property
    def ci95(self) -> tuple[float, float] | None:
        if self.estimate is None or self.std_error is None:
            return None
        half = 1.959964 * self.std_error
        return max(0.0, self.estimate - half), min(1.0, self.estimate + half)


def _truth():
    # A reviewer's override is the final word; otherwise the human majority.
    return func.coalesce(Pair.override_label, Pair.human_consensus)


def sample_results(session: Session, sample_id: int) -> SampleResult:
    sample = session.get(AuditSample, sample_id)
    if sample is None:
        raise UserError(f"no audit sample with id {sample_id}")
    truth = _truth().label("truth")
    rows = session.execute(
        select(AuditSampleItem.stratum, AuditSampleItem.weight, truth, Judgment.label)
        .join(Pair, Pair.id == AuditSampleItem.pair_id)
        .outerjoin(
            Judgment,
            (Judgment.pair_id == AuditSampleItem.pair_id)
            & (Judgment.judge_version_id == sample.judge_version_id),
        )
        .where(AuditSampleItem.sample_id == sample_id)
    )
    acc: dict[int, list[float]] = {}  # stratum -> [N_h, n_h, m_h, agree]
    for stratum, weight, human, ai in rows:
        entry = acc.setdefault(stratum, [0.0, 0, 0, 0])
        entry[0] += weight
        entry[1] += 1
        if human is not None:
            entry[2] += 1
            entry[3] += int(ai == human)  # invalid/failed AI labels count as disagreement
    strata = [
        StratumResult(h, stratum_label(h), round(e[0]), int(e[1]), int(e[2]), int(e[3]))
        for h, e in sorted(acc.items())
    ]
    covered = [s for s in strata if s.labelled]
    estimate = std_error = unweighted = None
    if covered:
        total = sum(s.population for s in covered)
        estimate = sum(s.population / total * s.agree / s.labelled for s in covered)
        variance = 0.0
        for s in covered:
            w, p = s.population / total, s.agree / s.labelled
            fpc = 1 - s.labelled / s.population if s.population else 0.0
            if s.labelled > 1:  # sample variance of a 0/1 outcome, n - 1 in the denominator
                variance += w * w * p * (1 - p) / (s.labelled - 1) * fpc
        std_error = math.sqrt(variance)
        unweighted = sum(s.agree for s in covered) / sum(s.labelled for s in covered)
    judge = session.get(JudgeVersion, sample.judge_version_id) if sample.judge_version_id else None
    return SampleResult(
        id=sample.id,
        name=sample.name,
        judge_version_id=sample.judge_version_id,
        judge_name=judge.name if judge else None,
        seed=sample.seed,
        size=sample.size,
        created_by=sample.created_by,
        created_at=sample.created_at,
        strata=strata,
        estimate=estimate,
        std_error=std_error,
        unweighted=unweighted,
    )


def list_samples(session: Session) -> list[SampleResult]:
    ids = session.scalars(select(AuditSample.id).order_by(AuditSample.id.desc()))
    return [sample_results(session, sample_id) for sample_id in ids]


@dataclass(frozen=True)
class SpotCheck:
    pair_id: int
    sample_id: int
    stratum: int
    weight: float  # inverse inclusion probability N_h / n_h
    human_label: str  # override, else human consensus


def spot_checks(
    session: Session, *, sample_id: int | None = None, judge_version_id: int | None = None
) -> list[SpotCheck]:
    """Labelled items of spot-check samples (one sample, one judge's samples, or all): the
    randomly drawn human labels that unbiased estimates (e.g. PPI) need. A pair in several
    samples appears once, from the newest sample."""
    query = (
        select(
            AuditSampleItem.pair_id,
            AuditSampleItem.sample_id,
            AuditSampleItem.stratum,
            AuditSampleItem.weight,
            _truth(),
        )
        .join(Pair, Pair.id == AuditSampleItem.pair_id)
        .join(AuditSample, AuditSample.id == AuditSampleItem.sample_id)
        .where(_truth().is_not(None))
        .order_by(AuditSampleItem.sample_id.desc(), AuditSampleItem.pair_id)
    )
    if sample_id is not None:
        query = query.where(AuditSampleItem.sample_id == sample_id)
    if judge_version_id is not None:
        query = query.where(AuditSample.judge_version_id == judge_version_id)
    seen: set[int] = set()
    checks = []
    for pair_id, sid, stratum, weight, label in session.execute(query):
        if pair_id not in seen:
            seen.add(pair_id)
            checks.append(SpotCheck(pair_id, sid, stratum, weight, label))
    return checks


def spot_checked_pair_ids(
    session: Session, *, sample_id: int | None = None, judge_version_id: int | None = None
) -> list[int]:
    """Ids of randomly sampled pairs that have a human label (see `spot_checks`)."""
    return [
        c.pair_id
        for c in spot_checks(session, sample_id=sample_id, judge_version_id=judge_version_id)
    ]

"""The alignment dashboard's data: calibration, thresholds, drift, PPI and position bias.

Everything starts from four GROUP BY queries (agreement.py, alignment_queries.py); the figures
are derived from those small aggregates in Python, so the page costs a few index-driven scans
however many pairs there are. The human reference of a pair is the one of agreement.py
(override, else strict-majority consensus), so every number here agrees with `rlaif metrics`.

Definitions:
- confidence: the judge's stored `Judgment.confidence` (its probability for the label it chose).
- reliability diagram: human-referenced pairs with a valid AI label, in equal-width confidence
  bins; agreement per bin against mean confidence. ECE = sum_b (n_b / n) |agreement_b - conf_b|.
- auto-accept at threshold t: the AI label is valid, swap-consistent and has confidence >= t
  (the export's merge rule). Everything else of that judge would go to human review.
- PPI: the pool-wide share of pairs whose preferred response is A (a tie is "not A"). Pool =
  the pairs this judge judged; predictor = 1 if the AI label is A, else 0 (B, tie, invalid and
  failed alike; PPI's rectifier corrects whatever bias that choice has).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditSample
from pipeline.evaluation import alignment_queries as q
from pipeline.evaluation.agreement import (
    FINE_BINS,
    ReferenceRow,
    classify,
    metrics_from,
    pool_counts,
    reference_rows,
    resolve_judges,
    with_length_bias,
)
from pipeline.evaluation.ppi import PpiEstimate, ppi_preferred_a

# --- reliability diagram --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    bin_lower: float
    bin_upper: float
    n: int
    mean_confidence: float
    agreement: float
    gap: float  # agreement - mean confidence: > 0 is under-confident


@dataclass(frozen=True, slots=True)
class Reliability:
    bins: list[ReliabilityBin]
    ece: float | None  # None with no compared pair
    n: int


def _compared(rows: Sequence[ReferenceRow]) -> list[ReferenceRow]:
    """Detailed reference rows with a valid AI label of known confidence."""
    return [r for r in rows if r.fine_bin is not None and classify(r.status, r.label) == "valid"]


def reliability(references: Sequence[ReferenceRow], bins: int = 10) -> Reliability:
    """Reliability diagram rows and ECE from one judge's detailed reference rows."""
    if bins <= 0 or FINE_BINS % bins:
        raise ValueError(f"bins must divide {FINE_BINS}")
    n = [0] * bins
    conf_sum = [0.0] * bins
    agree = [0] * bins
    for row in _compared(references):
        coarse = min(row.fine_bin * bins // FINE_BINS, bins - 1)
        n[coarse] += row.n
        conf_sum[coarse] += row.confidence_sum
        agree[coarse] += row.n if row.label == row.reference else 0
    total = sum(n)
    rows, ece = [], 0.0
    for b in range(bins):
        if not n[b]:
            continue
        mean_conf, agreement = conf_sum[b] / n[b], agree[b] / n[b]
        ece += n[b] / total * abs(agreement - mean_conf)
        rows.append(
            ReliabilityBin(
                bin_lower=b / bins,
                bin_upper=(b + 1) / bins,
                n=n[b],
                mean_confidence=mean_conf,
                agreement=agreement,
                gap=agreement - mean_conf,
            )
        )
    return Reliability(bins=rows, ece=ece if total else None, n=total)


# --- auto-accept threshold curve ------------------------------------------------------------


def thresholds_for(step: float) -> list[float]:
    """0, step, 2 step, ..., 1 as the decimals they are (k / 100, not k * 0.05)."""
    step_bins = round(step * FINE_BINS)
    if step_bins <= 0 or FINE_BINS % step_bins:
        raise ValueError(f"step must be a multiple of 1/{FINE_BINS} that divides 1")
    return [k / FINE_BINS for k in range(0, FINE_BINS + 1, step_bins)]


@dataclass(frozen=True, slots=True)
class ThresholdPoint:
    threshold: float
    auto_accepted: int
    to_review: int
    review_share: float | None
    compared_accepted: int  # auto-accepted pairs with a human reference
    agreement_accepted: float | None


def threshold_curve(references: Sequence[ReferenceRow], pool: q.PoolScan) -> list[ThresholdPoint]:
    """Per threshold t (pool.band_edges): agreement of the auto-accepted AI labels with the
    humans, and the share of the judge's judged pairs that would go to human review."""
    judged = sum(group.n for group in pool.groups)
    compared_at = [0] * (FINE_BINS + 2)
    agree_at = [0] * (FINE_BINS + 2)
    for row in _compared(references):
        if not row.swap_inconsistent:
            compared_at[row.fine_bin] += row.n
            agree_at[row.fine_bin] += row.n if row.label == row.reference else 0
    # Suffix sums: "confidence >= t" is "fine bin >= t * FINE_BINS" (see metrics.fine_bin).
    for k in range(FINE_BINS - 1, -1, -1):
        compared_at[k] += compared_at[k + 1]
        agree_at[k] += agree_at[k + 1]
    curve = []
    for i, threshold in enumerate(pool.band_edges):
        accepted = sum(pool.accepted_in_band[i:])
        k = round(threshold * FINE_BINS)
        curve.append(
            ThresholdPoint(
                threshold=threshold,
                auto_accepted=accepted,
                to_review=judged - accepted,
                review_share=(judged - accepted) / judged if judged else None,
                compared_accepted=compared_at[k],
                agreement_accepted=agree_at[k] / compared_at[k] if compared_at[k] else None,
            )
        )
    return curve


# --- drift ----------------------------------------------------------------------------------


def _bucket_start(day: date, bucket: str) -> date:
    if bucket == "day":
        return day
    if bucket == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if bucket == "month":
        return day.replace(day=1)
    raise ValueError(f"bucket must be day, week or month, not {bucket!r}")


@dataclass(frozen=True, slots=True)
class PeriodAgreement:
    judge: str
    period: str  # ISO date of the period's first day
    n: int
    agreement: float


def agreement_over_time(
    daily: Sequence[q.DailyAgreement], names: dict[int, str], bucket: str = "week"
) -> list[PeriodAgreement]:
    """Agreement per judge version per period of the judgment date (when its label was written)."""
    totals: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0])
    for row in daily:
        key = (row.judge_version_id, _bucket_start(row.day, bucket))
        totals[key][0] += row.n
        totals[key][1] += row.agree
    return [
        PeriodAgreement(judge=names[judge_id], period=start.isoformat(), n=n, agreement=agree / n)
        for (judge_id, start), (n, agree) in sorted(totals.items(), key=lambda kv: kv[0][::-1])
    ]


@dataclass(frozen=True, slots=True)
class VersionAgreement:
    judge: str
    created_at: str  # ISO, to the second
    pairs_compared: int
    agreement: float | None
    cohen_kappa: float | None
    common_pairs: int  # pairs every listed version judged validly
    agreement_common: float | None


def across_versions(
    metrics: Sequence[dict[str, Any]], common: dict[int, tuple[int, int]]
) -> list[VersionAgreement]:
    """Each version's agreement, oldest first, also on the pairs every listed version judged
    validly (the like-for-like comparison: differing pair sets can fake a drift)."""
    rows = []
    for m in metrics:
        n_common, agree_common = common.get(m["judge_version_id"], (0, 0))
        rows.append(
            VersionAgreement(
                judge=m["judge"],
                created_at=m["created_at"],
                pairs_compared=m["pairs_compared"],
                agreement=m["agreement"],
                cohen_kappa=m["cohen_kappa"],
                common_pairs=n_common,
                agreement_common=agree_common / n_common if n_common else None,
            )
        )
    return rows


# --- position bias --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PositionBias:
    judged_both_orders: int
    swap_inconsistent: int
    swap_inconsistency_rate: float | None
    # P(pick A | A shown first) and P(pick A | A shown second); equal for an unbiased judge.
    pick_a_when_first: float | None
    pick_a_when_second: float | None
    position_bias: float | None
    # Share of decisions that went to whichever response was shown first.
    first_slot_rate: float | None


def position_bias(pool: q.PoolScan) -> PositionBias:
    """Swap-inconsistency rate and how often the judge picks A in each presentation order."""
    both = pool.both_orders

    def share(count: int) -> float | None:
        return count / both if both else None

    first, second = share(pool.picks_a_first), share(pool.picks_a_second)
    return PositionBias(
        judged_both_orders=both,
        swap_inconsistent=pool.swap_inconsistent,
        swap_inconsistency_rate=(
            pool.swap_inconsistent / pool.swap_known if pool.swap_known else None
        ),
        pick_a_when_first=first,
        pick_a_when_second=second,
        position_bias=first - second if both else None,
        first_slot_rate=(pool.picks_a_first + pool.picks_b_second) / (2 * both) if both else None,
    )


def audit_samples(session: Session) -> list[dict[str, Any]]:
    """Stored audit samples, newest first (for choosing the PPI's spot-check set)."""
    query = select(
        AuditSample.id, AuditSample.name, AuditSample.judge_version_id, AuditSample.size
    ).order_by(AuditSample.id.desc())
    return [
        {"id": i, "name": name, "judge_version_id": judge_id, "size": size}
        for i, name, judge_id, size in session.execute(query)
    ]


def default_sample_id(samples: Sequence[dict[str, Any]], judge_version_id: int) -> int | None:
    """The newest audit sample drawn for this judge (or for no particular judge), else None."""
    for sample in samples:
        if sample["judge_version_id"] in (judge_version_id, None):
            return sample["id"]
    return None


# --- the whole page -------------------------------------------------------------------------


@dataclass
class JudgeAlignment:
    judge: str
    judge_version_id: int
    metrics: dict[str, Any]  # one row of `rlaif metrics` (agreement.metrics_from)
    reliability: Reliability
    thresholds: list[ThresholdPoint]
    bias: PositionBias
    ppi: PpiEstimate


@dataclass
class AlignmentReport:
    judges: list[JudgeAlignment] = field(default_factory=list)
    over_time: list[PeriodAgreement] = field(default_factory=list)
    across_versions: list[VersionAgreement] = field(default_factory=list)

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return [j.metrics for j in self.judges]


def alignment_report(
    session: Session,
    judge_names: Sequence[str] | None = None,
    *,
    bins: int = 10,
    threshold_step: float = 0.05,
    time_bucket: str = "week",
    sample_ids: dict[int, int | None] | None = None,
    alpha: float = 0.05,
    common_pairs: bool = True,
) -> AlignmentReport:
    """Everything the alignment page shows, for the named judge versions (all when empty).

    `sample_ids` maps a judge version id to the audit sample used for its PPI interval.
    `common_pairs` adds the like-for-like comparison of versions (one more join)."""
    judges = resolve_judges(session, judge_names)
    report = AlignmentReport()
    if not judges:
        return report
    ids = [j.id for j in judges]
    names = {j.id: j.name for j in judges}
    pool = q.pool_scan(session, ids)
    q.accepted_by_band(session, pool, thresholds_for(threshold_step))
    references = reference_rows(session, ids, detailed=True)
    # The metrics come from the same aggregates as `rlaif metrics`, through the same function.
    totals: dict[tuple[int, str | None, str | None], int] = defaultdict(int)
    for judge_id, scan in pool.items():
        for group in scan.groups:
            totals[(judge_id, group.status, group.label)] += group.n
    metrics = with_length_bias(
        session, metrics_from(judges, pool_counts(session), totals, references)
    )
    by_judge: dict[int, list[ReferenceRow]] = {i: [] for i in ids}
    for row in references:
        by_judge[row.judge_version_id].append(row)
    for judge, m in zip(judges, metrics, strict=True):
        refs = by_judge[judge.id]
        report.judges.append(
            JudgeAlignment(
                judge=judge.name,
                judge_version_id=judge.id,
                metrics=m,
                reliability=reliability(refs, bins),
                thresholds=threshold_curve(refs, pool[judge.id]),
                bias=position_bias(pool[judge.id]),
                ppi=ppi_preferred_a(
                    session,
                    judge.id,
                    pool[judge.id],
                    refs,
                    sample_id=(sample_ids or {}).get(judge.id),
                    alpha=alpha,
                ),
            )
        )
    report.over_time = agreement_over_time(q.daily_agreement(session, ids), names, time_bucket)
    common = q.common_pair_agreement(session, ids) if common_pairs else {}
    report.across_versions = across_versions(metrics, common)
    return report

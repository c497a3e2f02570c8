"""Agreement of each judge version with the humans: SQL aggregates in, numbers out.

The human reference of a pair is, in order of precedence:

1. a reviewer's override (`Pair.override_label`), when one is set: it is the pair's final label,
   decided by a person who saw the votes, so it also settles a split vote;
2. otherwise the strict-majority label of its human labels (`Pair.human_consensus`, kept up to
   date by db/pair_state.py). An even split (1 A vs 1 B, or A/B/tie once each) has no consensus.

`tie` is a label like A and B everywhere. A judgment is *valid* when its status is `ok` and its
label is A, B or tie; *failed* when its status is `failed` (the backend raised); *invalid*
otherwise (the judge answered, but not with a label). Invalid and failed judgments are never
dropped: they are counted in `ai_invalid` / `ai_failed` (on human-referenced pairs) and in the
totals.

Identities per judge version:
    human_consensus_pairs = pairs_compared + ai_invalid + ai_failed + not_judged
    agreement             = trace(confusion) / pairs_compared
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session

from db.models import LABELS, JudgeVersion, Judgment, Pair
from pipeline.errors import UserError


def human_reference():
    """SQL expression: the pair's human reference label (override, else consensus), or NULL."""
    return func.coalesce(Pair.override_label, Pair.human_consensus)


def judgment_class():
    """SQL expression: 'valid', 'invalid' or 'failed' for a judgment row."""
    return case(
        (Judgment.status == "failed", literal("failed")),
        (and_(Judgment.status == "ok", Judgment.label.in_(LABELS)), literal("valid")),
        else_=literal("invalid"),
    )


def cohen_kappa(confusion: dict[str, dict[str, int]]) -> float | None:
    """Cohen's kappa over classes A/B/tie from {human: {ai: count}}.

    None when there is nothing to compare, or when chance agreement is 1 (both raters used one
    and the same class for every pair), where kappa is 0/0 and undefined."""
    n = sum(confusion[h][a] for h in LABELS for a in LABELS)
    if n == 0:
        return None
    observed = sum(confusion[k][k] for k in LABELS) / n
    chance = sum(
        (sum(confusion[k][a] for a in LABELS) / n) * (sum(confusion[h][k] for h in LABELS) / n)
        for k in LABELS
    )
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)


def resolve_judges(session: Session, names: Sequence[str] | None = None) -> list[JudgeVersion]:
    """Judge versions by name (all of them, oldest first, when `names` is empty)."""
    query = select(JudgeVersion).order_by(JudgeVersion.created_at, JudgeVersion.id)
    judges = list(session.scalars(query))
    if not names:
        return judges
    by_name = {judge.name: judge for judge in judges}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name)) or "none yet"
        raise UserError(f"unknown judge version {unknown[0]!r} (known: {known})")
    return [by_name[name] for name in names]


def pool_counts(session: Session) -> dict[str, int]:
    """Pair-level human counts, the same for every judge version (one aggregate query)."""
    reference = human_reference()
    row = session.execute(
        select(
            func.count(),
            func.count(Pair.id).filter(Pair.human_label_count > 0),
            func.count(Pair.id).filter(reference.is_not(None)),
            func.count(Pair.id).filter(Pair.override_label.is_not(None)),
            func.count(Pair.id).filter(Pair.human_label_count > 0, reference.is_(None)),
        )
    ).one()
    return {
        "pairs": row[0],
        "human_labelled_pairs": row[1],
        "human_consensus_pairs": row[2],
        "override_pairs": row[3],
        "human_split_pairs": row[4],
    }


def _empty_confusion() -> dict[str, dict[str, int]]:
    return {human: {ai: 0 for ai in LABELS} for human in LABELS}


def compute_metrics(session: Session, judge_names: Sequence[str] | None = None) -> list[dict]:
    """One dict per judge version (oldest first); see the module docstring for definitions."""
    judges = resolve_judges(session, judge_names)
    if not judges:
        return []
    ids = [judge.id for judge in judges]
    pool = pool_counts(session)

    # Totals per judge version and class: one GROUP BY over the judgments.
    klass = judgment_class()
    totals: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for judge_id, cls, count in session.execute(
        select(Judgment.judge_version_id, klass, func.count())
        .where(Judgment.judge_version_id.in_(ids))
        .group_by(Judgment.judge_version_id, klass)
    ):
        totals[judge_id][cls] += count

    # Human reference x AI label on the human-referenced pairs: one GROUP BY over a join that
    # starts from the (few) pairs with a reference and probes judgments by (pair_id, judge).
    reference = human_reference().label("reference")
    compared_rows = session.execute(
        select(Judgment.judge_version_id, reference, klass, Judgment.label, func.count())
        .select_from(Pair)
        .join(Judgment, Judgment.pair_id == Pair.id)
        .where(human_reference().is_not(None), Judgment.judge_version_id.in_(ids))
        .group_by(Judgment.judge_version_id, human_reference(), klass, Judgment.label)
    ).all()
    confusion: dict[int, dict[str, dict[str, int]]] = {i: _empty_confusion() for i in ids}
    on_reference: dict[int, dict[str, int]] = {i: defaultdict(int) for i in ids}
    for judge_id, human, cls, ai_label, count in compared_rows:
        on_reference[judge_id][cls] += count
        if cls == "valid":
            confusion[judge_id][human][ai_label] += count

    results = []
    for judge in judges:
        matrix = confusion[judge.id]
        compared = sum(matrix[h][a] for h in LABELS for a in LABELS)
        agreed = sum(matrix[k][k] for k in LABELS)
        judge_totals = totals[judge.id]
        judged_on_reference = sum(on_reference[judge.id].values())
        results.append(
            {
                "judge": judge.name,
                "judge_version_id": judge.id,
                "backend": judge.backend,
                "model_id": judge.model_id,
                "confidence_kind": judge.confidence_kind,
                "created_at": judge.created_at.isoformat(timespec="seconds"),
                "judged": sum(judge_totals.values()),
                "valid": judge_totals["valid"],
                "invalid_total": judge_totals["invalid"],
                "failed_total": judge_totals["failed"],
                **pool,
                "pairs_compared": compared,
                "agreement": agreed / compared if compared else None,
                "cohen_kappa": cohen_kappa(matrix),
                "confusion": matrix,
                "ai_invalid": on_reference[judge.id]["invalid"],
                "ai_failed": on_reference[judge.id]["failed"],
                "not_judged": pool["human_consensus_pairs"] - judged_on_reference,
            }
        )
    return results


def metrics_rows_for_table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows (one per judge) for tables and CSV: the confusion matrix as 9 columns."""
    rows = []
    for result in results:
        row = {key: value for key, value in result.items() if key != "confusion"}
        for human in LABELS:
            for ai in LABELS:
                row[f"human_{human}_ai_{ai}"] = result["confusion"][human][ai]
        rows.append(row)
    return rows

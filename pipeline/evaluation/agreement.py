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

The judge's length bias (pipeline/evaluation/length_bias.py): `ai_prefers_longer` is the share
of valid non-tie AI labels, on pairs whose responses differ by more than 30 characters, that
picked the longer response; `human_prefers_longer` the same for the human reference; with the
counts (`ai_length_pairs`, `ai_picked_longer`, `human_length_pairs`, `human_picked_longer`).

Identities per judge version:
    human_consensus_pairs = pairs_compared + ai_invalid + ai_failed + not_judged
    agreement             = trace(confusion) / pairs_compared
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Join, and_, case, func, literal, literal_column, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from db.enums import JudgeTask, JudgmentStatus
from db.models import LABELS, JudgeVersion, Judgment, Pair
from pipeline.errors import UserError


def human_reference():
    """SQL expression: the pair's human reference label (override, else consensus), or NULL."""
    return func.coalesce(Pair.override_label, Pair.human_consensus)


def has_human_reference():
    # Spelled as an OR of the two columns (not `coalesce(...) IS NOT NULL`) so either column's
    # index can serve it.
    return or_(Pair.human_consensus.is_not(None), Pair.override_label.is_not(None))


def judgment_class():
    """SQL expression: 'valid', 'invalid' or 'failed' for a judgment row (see classify)."""
    return case(
        (Judgment.status == JudgmentStatus.FAILED, literal("failed")),
        (and_(Judgment.status == JudgmentStatus.OK, Judgment.label.in_(LABELS)), literal("valid")),
        else_=literal("invalid"),
    )


def classify(status: str | None, label: str | None) -> str:
    """The same classes as judgment_class(), for rows already aggregated by status and label."""
    if status == JudgmentStatus.FAILED:
        return "failed"
    return "valid" if status == JudgmentStatus.OK and label in LABELS else "invalid"


class _PairsFirstJoin(Join):
    """`pairs JOIN judgments` that SQLite must execute pairs-first.

    Without statistics (no ANALYZE) SQLite drives the join from judgments through the
    judge_version_id index: 1 M rows for 2 judges. Driving from the pairs instead (a scan of
    the pairs, then one probe of the unique (pair_id, judge_version_id) index each) reads only
    the judgments of human-referenced pairs. SQLite documents CROSS JOIN as the way to pin the
    order; other databases get a plain JOIN and plan it from their statistics."""

    inherit_cache = True


@compiles(_PairsFirstJoin, "sqlite")
def _pairs_first_sqlite(element, compiler, **kw):
    kw["asfrom"] = True
    left, right = (compiler.process(side, **kw) for side in (element.left, element.right))
    kw.pop("asfrom")
    return f"{left} CROSS JOIN {right} ON {compiler.process(element.onclause, **kw)}"


def referenced_judgments():
    """FROM clause: human-referenced pairs joined to their judgments, pairs first."""
    return _PairsFirstJoin(Pair.__table__, Judgment.__table__, Judgment.pair_id == Pair.id)


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
    """Judge versions by name; when `names` is empty, every pairwise one, oldest first (a
    harmless judge rates single responses: it has no pairs to agree on)."""
    query = select(JudgeVersion).order_by(JudgeVersion.created_at, JudgeVersion.id)
    judges = list(session.scalars(query))
    if not names:
        return [j for j in judges if (j.params or {}).get("task") != JudgeTask.HARMLESS]
    by_name = {judge.name: judge for judge in judges}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name)) or "none yet"
        raise UserError(f"unknown judge version {unknown[0]!r} (known: {known})")
    return [by_name[name] for name in names]


def pool_counts(session: Session) -> dict[str, int]:
    """Pair-level human counts, the same for every judge version (one aggregate query)."""
    referenced = has_human_reference()
    row = session.execute(
        select(
            func.count(),
            func.count(Pair.id).filter(Pair.human_label_count > 0),
            func.count(Pair.id).filter(referenced),
            func.count(Pair.id).filter(Pair.override_label.is_not(None)),
            func.count(Pair.id).filter(Pair.human_label_count > 0, ~referenced),
        )
    ).one()
    return {
        "pairs": row[0],
        "human_labelled_pairs": row[1],
        "human_consensus_pairs": row[2],
        "override_pairs": row[3],
        "human_split_pairs": row[4],
    }


# (judge_version_id, status, label) -> count
Totals = dict[tuple[int, str | None, str | None], int]


def judgment_totals(session: Session, ids: Sequence[int]) -> Totals:
    """Judgments per judge, status and label: an index-only scan of ix_judgments_alignment."""
    query = (
        select(Judgment.judge_version_id, Judgment.status, Judgment.label, func.count())
        .where(Judgment.judge_version_id.in_(ids))
        .group_by(Judgment.judge_version_id, Judgment.status, Judgment.label)
    )
    return {(j, status, label): n for j, status, label, n in session.execute(query)}


@dataclass(frozen=True)
class ReferenceRow:
    """Judgments of human-referenced pairs, aggregated. `status` and `label` stand for the
    judgment class (ok and the label when valid; failed; invalid), not the stored strings.
    `fine_bin` and `swap_inconsistent` are None unless the detailed form was asked for (the
    alignment page needs them)."""

    judge_version_id: int
    reference: str
    status: str | None
    label: str | None
    fine_bin: int | None
    swap_inconsistent: bool | None
    n: int
    confidence_sum: float


FINE_BINS = 100  # the confidence histogram's step is 1/FINE_BINS


class _floor_int(FunctionElement):
    """floor(x) as an integer, for x >= 0 (SQLite's CAST truncates; PostgreSQL's rounds)."""

    type = Integer()
    inherit_cache = True
    name = "floor_int"


@compiles(_floor_int)
def _floor_default(element, compiler, **kw):
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(_floor_int, "sqlite")
def _floor_sqlite(element, compiler, **kw):
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


def fine_bin():
    """SQL: the confidence's bin 0..FINE_BINS (1.0 is bin FINE_BINS); NULL when unknown.
    The 1e-9 keeps e.g. 0.29 (28.999...96 after * 100) in its own bin."""
    # Literal constants, not bind parameters: PostgreSQL must see the same expression in SELECT
    # and GROUP BY.
    return _floor_int(Judgment.confidence * literal_column(str(FINE_BINS)) + literal_column("1e-9"))


def clamp_bin(value: int | None) -> int | None:
    return None if value is None else max(0, min(int(value), FINE_BINS))


# Outcome classes of a judgment as one small integer (see _class_code), and the (status,
# label) each stands for in a ReferenceRow: classify() and the label give the same answers.
# Numbered in the order of the stored strings, so that the rows come out in the order the
# GROUP BY on (status, label) gave them (the PPI sums follow it, to the last bit).
_CLASS_OF_CODE = {
    0: ("failed", None),
    1: ("invalid", "invalid"),
    **{2 + index: ("ok", label) for index, label in enumerate(LABELS)},
}
_REFERENCE_OF_CODE = dict(enumerate(LABELS))


def _class_code():
    """SQL: 0 failed, 1 invalid, 2/3/4 a valid A/B/tie label (judgment_class)."""
    label = case({name: 2 + index for index, name in enumerate(LABELS)}, value=Judgment.label)
    return case(
        (Judgment.status == JudgmentStatus.FAILED, literal(0)),
        (Judgment.status == JudgmentStatus.OK, func.coalesce(label, literal(1))),
        else_=literal(1),
    )


def reference_rows(
    session: Session, ids: Sequence[int], *, detailed: bool = False
) -> list[ReferenceRow]:
    """Human reference x AI outcome class (x confidence bin x swap flag when `detailed`) on
    the human-referenced pairs: one GROUP BY over a pairs-first join. The judge, the reference
    and the AI class are grouped as one integer: sorting on one number instead of three text
    columns takes about a third off the query. Each row's status and label stand for its
    class (see _CLASS_OF_CODE)."""
    if not ids:
        return []
    reference = case({name: index for index, name in enumerate(LABELS)}, value=human_reference())
    code = (Judgment.judge_version_id * 4 + func.coalesce(reference, literal(3))) * 8
    columns = [(code + _class_code()).label("code")]
    if detailed:
        columns += [fine_bin().label("fine_bin"), Judgment.swap_inconsistent]
    rows_in = (
        select(*columns, Judgment.confidence)
        .select_from(referenced_judgments())
        .where(has_human_reference(), Judgment.judge_version_id.in_(ids))
        .subquery()
    )
    keys = [rows_in.c.code] + (
        [rows_in.c.fine_bin, rows_in.c.swap_inconsistent] if detailed else []
    )
    query = select(*keys, func.count(), func.sum(rows_in.c.confidence)).group_by(*keys)
    rows = []
    for row in session.execute(query):
        rest, class_code = divmod(row[0], 8)
        judge_id, reference_code = divmod(rest, 4)
        status, label = _CLASS_OF_CODE[class_code]
        fine, swap = (clamp_bin(row[1]), row[2]) if detailed else (None, None)
        n, conf_sum = row[-2], row[-1]
        ref = _REFERENCE_OF_CODE.get(reference_code)
        rows.append(ReferenceRow(judge_id, ref, status, label, fine, swap, n, conf_sum or 0.0))
    return rows


def _empty_confusion() -> dict[str, dict[str, int]]:
    return {human: {ai: 0 for ai in LABELS} for human in LABELS}


def compute_metrics(session: Session, judge_names: Sequence[str] | None = None) -> list[dict]:
    """One dict per judge version (oldest first); see the module docstring for definitions."""
    judges = resolve_judges(session, judge_names)
    ids = [judge.id for judge in judges]
    if not judges:
        return []
    results = metrics_from(
        judges, pool_counts(session), judgment_totals(session, ids), reference_rows(session, ids)
    )
    return with_length_bias(session, results)


def with_length_bias(session: Session, results: list[dict]) -> list[dict]:
    """Add the judge's length bias (pipeline/evaluation/length_bias.py) to each result."""
    from pipeline.evaluation.length_bias import length_bias

    bias = length_bias(session, [result["judge_version_id"] for result in results])
    for result in results:
        result.update(bias[result["judge_version_id"]].as_metrics())
    return results


def metrics_from(
    judges: Sequence[JudgeVersion],
    pool: dict[str, int],
    totals: Totals,
    references: Sequence[ReferenceRow],
) -> list[dict]:
    """The metrics from the aggregates (shared by the CLI and the alignment page)."""
    by_class: dict[int, dict[str, int]] = {judge.id: defaultdict(int) for judge in judges}
    for (judge_id, status, label), n in totals.items():
        if judge_id in by_class:
            by_class[judge_id][classify(status, label)] += n
    confusion = {judge.id: _empty_confusion() for judge in judges}
    on_reference: dict[int, dict[str, int]] = {judge.id: defaultdict(int) for judge in judges}
    for row in references:
        if row.judge_version_id not in confusion:
            continue
        cls = classify(row.status, row.label)
        on_reference[row.judge_version_id][cls] += row.n
        if cls == "valid":
            confusion[row.judge_version_id][row.reference][row.label] += row.n

    results = []
    for judge in judges:
        matrix = confusion[judge.id]
        compared = sum(matrix[h][a] for h in LABELS for a in LABELS)
        agreed = sum(matrix[k][k] for k in LABELS)
        classes = by_class[judge.id]
        results.append(
            {
                "judge": judge.name,
                "judge_version_id": judge.id,
                "backend": judge.backend,
                "model_id": judge.model_id,
                "confidence_kind": judge.confidence_kind,
                "created_at": judge.created_at.isoformat(timespec="seconds"),
                "judged": sum(classes.values()),
                "valid": classes["valid"],
                "invalid_total": classes["invalid"],
                "failed_total": classes["failed"],
                **pool,
                "pairs_compared": compared,
                "agreement": agreed / compared if compared else None,
                "cohen_kappa": cohen_kappa(matrix),
                "confusion": matrix,
                "ai_invalid": on_reference[judge.id]["invalid"],
                "ai_failed": on_reference[judge.id]["failed"],
                "not_judged": pool["human_consensus_pairs"] - sum(on_reference[judge.id].values()),
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

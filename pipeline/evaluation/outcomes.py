"""What the win rates are computed from: one stream of per-pair rows (the AI counts, and the
fits: length control, PPI) and one SQL aggregate of the human outcomes of pairs between systems.
The length difference of a pair is stored on it (Pair.length_diff), so no query here reads the
responses.

Outcome of a pair for the system in slot A: 1 (A preferred), 0.5 (tie), 0 (B preferred).
A pair whose two responses are the same text (the same response row) is a tie by construction,
for the judge and for people alike, whatever was stored. The AI outcome comes from the stored
label (a swap-inconsistent judgment counts as labelled: the combined probability decided it);
invalid and failed judgments have no outcome and are counted apart. The human outcome comes
from the human reference of agreement.py (override, else strict-majority consensus).
Pairs without both systems take part in nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Join,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session

from db.enums import JudgmentStatus
from db.models import Judgment, Pair, System
from pipeline.evaluation.agreement import human_reference
from pipeline.evaluation.stream_read import probability_sql, probability_values, read_int_columns

OUTCOME = {"A": 1.0, "tie": 0.5, "B": 0.0}


@dataclass(frozen=True)
class SystemFilter:
    """Pairs involving `system` (either slot), and also `opponent` when given."""

    system: str | None = None
    opponent: str | None = None
    source: str | None = None  # only pairs with this source tag (e.g. one evaluation's)

    def condition(self) -> ColumnElement[bool]:
        return and_(Pair.system_a.is_not(None), Pair.system_b.is_not(None), *self._filters())

    def id_condition(self) -> ColumnElement[bool]:
        """The same pairs, told by the system ids: an integer test per row instead of two
        text columns read (at a million rows, the difference is 0.1 s on SQLite)."""
        return and_(Pair.system_a_id.is_not(None), Pair.system_b_id.is_not(None), *self._filters())

    def _filters(self) -> list[ColumnElement[bool]]:
        conditions = []
        for name in (self.system, self.opponent):
            if name is not None:
                conditions.append(or_(Pair.system_a == name, Pair.system_b == name))
        if self.source is not None:
            conditions.append(Pair.source == self.source)
        return conditions


class _JudgmentScanJoin(Join):
    """`pairs JOIN judgments` that SQLite executes as a scan of the judgments in table order,
    then one primary-key probe of the pair each.

    Left alone, SQLite reads the pairs through the (system_a, system_b) index and visits the
    judgments in random order: several times slower at 1 M pairs. Scanning the (narrow)
    judgments and probing the (wide) pairs by rowid is about 1.3-2x cheaper than the other
    way round (bench/winrate_compare.py). CROSS JOIN pins the join order, NOT INDEXED the scan.
    Other databases get a plain JOIN and plan it from their statistics."""

    inherit_cache = True


@compiles(_JudgmentScanJoin, "sqlite")
def _judgment_scan_sqlite(element, compiler, **kw):
    kw["asfrom"] = True
    pairs, judgments = (compiler.process(side, **kw) for side in (element.left, element.right))
    kw.pop("asfrom")
    on = compiler.process(element.onclause, **kw)
    return f"{judgments} NOT INDEXED CROSS JOIN {pairs} ON {on}"


def pairs_with_judgments() -> Join:
    return _JudgmentScanJoin(Pair.__table__, Judgment.__table__, Judgment.pair_id == Pair.id)


def identical():
    """SQL: 1 when both slots hold the same response (the same text), else 0."""
    return case((Pair.response_a_id == Pair.response_b_id, 1), else_=0)


@dataclass(frozen=True)
class HumanCell:
    system_a: str
    system_b: str
    outcome_a: float
    n: int


def has_human_outcome() -> ColumnElement[bool]:
    """SQL: the pair has a human outcome (a human reference, or identical responses).
    Word for word the predicate of the partial index ix_pairs_human_outcome (db/models.py),
    so that the query reads that index (a few per cent of the pairs) instead of the table."""
    return or_(
        Pair.human_consensus.is_not(None),
        Pair.override_label.is_not(None),
        Pair.response_a_id == Pair.response_b_id,
    )


def human_cells(session: Session, where: SystemFilter) -> list[HumanCell]:
    """Human outcomes of the pairs between systems (human-referenced or identical pairs)."""
    same = identical()
    keys = [same, human_reference(), Pair.system_a, Pair.system_b]
    query = (
        select(*keys, func.count()).where(has_human_outcome(), where.condition()).group_by(*keys)
    )
    return [
        HumanCell(system_a, system_b, 0.5 if is_same else OUTCOME[ref], n)
        for is_same, ref, system_a, system_b, n in session.execute(query)
    ]


@dataclass(frozen=True)
class PairStream:
    """Per-pair rows of the judged pairs between two different systems, as arrays.

    `system_a`/`system_b`: indexes into `names`; `ai`: the hard AI outcome for slot A (nan when
    invalid or failed); `soft`: the judge's P(A preferred) (the hard outcome when no
    probability was stored, 0.5 when invalid or failed); `length_diff`: characters of A minus
    characters of B; `human`: the human outcome for A (nan without a human reference)."""

    names: tuple[str, ...]  # sorted
    judge_version_id: np.ndarray
    system_a: np.ndarray
    system_b: np.ndarray
    ai: np.ndarray
    soft: np.ndarray
    length_diff: np.ndarray
    human: np.ndarray

    def between_systems(self) -> PairStream:
        """The rows whose two slots hold different systems."""
        keep = self.system_a != self.system_b
        return PairStream(
            self.names,
            *(getattr(self, f.name)[keep] for f in fields(self) if f.name != "names"),
        )


def system_names(session: Session, where: SystemFilter) -> list[str]:
    """Every system named in either slot of the pairs `where` selects, sorted: a skip scan of
    the system indexes, one `min(system) > last` probe per name (a DISTINCT reads the whole
    index: 80 ms at 1 M pairs on SQLite, against about 2 ms)."""
    names: set[str] = set()
    for column in (Pair.system_a, Pair.system_b):
        last = session.scalar(select(func.min(column)))
        while last is not None:
            names.add(last)
            last = session.scalar(select(func.min(column)).where(column > last))
    for name in (where.system, where.opponent):
        if name is not None and name not in names:
            return []
    return sorted(names)


NO_OUTCOME = -1.0  # stands for NULL in the stream: every column arrives as a number
# Outcome codes in the packed stream column (for slot A): B, tie, A, none (invalid, failed,
# no human reference). code / 2 is the outcome.
_CODE = {"B": 0, "tie": 1, "A": 2}
_NONE = 3


_DIFF_BITS = 32  # the length difference rides in the packed column's low bits, offset by half
_EXACT = 2**63  # the packed values cross as int64


def _code_sql(label, status=None) -> ColumnElement:
    """SQL: the outcome code of `label` (with `status`: only when it is 'ok')."""
    code = case(_CODE, value=label, else_=literal(_NONE))
    return (
        code if status is None else case((status == JudgmentStatus.OK, code), else_=literal(_NONE))
    )


def _empty_stream() -> PairStream:
    ints, floats = np.zeros(0, dtype=np.int64), np.zeros(0)
    return PairStream((), ints, ints, ints, floats, floats, floats, floats)


def stream_pairs(
    session: Session,
    judge_ids: Sequence[int],
    where: SystemFilter,
    *,
    self_pairs: bool = False,
    counts_only: bool = False,
) -> PairStream:
    """One pass over the judged pairs (between different systems unless `self_pairs`): the
    rows the counts, the logistic fits and PPI read.

    Two integer columns per row, no join beyond pairs x judgments (the length difference and
    the system ids are stored on the pair): judge, systems, both outcome codes and the length
    difference packed into one integer, and the judge's P(A) scaled to an integer (NO_OUTCOME
    for NULL). At a million rows the cost is the SQL expressions and the values crossing the
    DBAPI, so both are kept small (stream_read.py). With too many judges x systems to pack
    exactly, the length difference gets its own column. `counts_only`: the packed outcomes
    alone (length_diff 0, soft 0.5), for the counts."""
    names = system_names(session, where) if judge_ids else []
    if not names:
        return _empty_stream()
    ids = dict(session.execute(select(System.id, System.name).where(System.name.in_(names))).all())
    if not ids:  # names without ids: pairs written around the model (the default sets them)
        return _empty_stream()
    k, judges = max(ids) + 1, sorted(set(judge_ids))
    system = Pair.system_a_id * k + Pair.system_b_id
    if len(judges) > 1:  # one judge: index 0, no CASE per row
        judge = case({j: index for index, j in enumerate(judges)}, value=Judgment.judge_version_id)
        system = judge * (k * k) + system
    same = case((Pair.response_a_id == Pair.response_b_id, 1), else_=0)
    packed = (
        cast(system * 32 + same * 16, BigInteger) + _code_sql(Judgment.label, Judgment.status) * 4
    )
    packed = packed + _code_sql(human_reference())
    diff = func.coalesce(Pair.length_diff, 0)
    pack_diff = not counts_only and len(judges) * k * k * 32 * 2**_DIFF_BITS < _EXACT
    if pack_diff:
        # BigInteger literals: PostgreSQL would type a bound 2**31 as a 32-bit integer.
        shift, offset = (
            literal(2**_DIFF_BITS, BigInteger),
            literal(2 ** (_DIFF_BITS - 1), BigInteger),
        )
        packed = packed * shift + (diff + offset)
    conditions = [where.id_condition(), Judgment.judge_version_id.in_(judges)]
    if not self_pairs:
        conditions.append(Pair.system_a_id != Pair.system_b_id)
    if counts_only:
        (packed_values,) = read_int_columns(session, [packed], pairs_with_judgments(), conditions)
        diff_values, p_a_values = np.zeros(len(packed_values)), np.full(len(packed_values), 0.5)
        return _unpack(names, ids, judges, packed_values, diff_values, p_a_values)
    columns = [packed, probability_sql(Judgment.p_a)] + ([] if pack_diff else [diff])
    packed_values, p_a_codes, *rest = read_int_columns(
        session, columns, pairs_with_judgments(), conditions
    )
    p_a_values = probability_values(p_a_codes, NO_OUTCOME)
    if pack_diff:
        packed_values, diff_values = np.divmod(packed_values, 2**_DIFF_BITS)
        diff_values = (diff_values - 2 ** (_DIFF_BITS - 1)).astype(float)
    else:
        diff_values = rest[0].astype(float)
    return _unpack(names, ids, judges, packed_values, diff_values, p_a_values)


def _unpack(names, ids: dict[int, str], judges, packed, diff, p_a) -> PairStream:
    """The stream's arrays from its packed integers (`ids`: system id -> name)."""
    k = max(ids) + 1
    index_of = np.full(k, -1, dtype=np.int64)  # system id -> index into the sorted names
    index_of[list(ids)] = [names.index(name) for name in ids.values()]
    human_code, rest = packed % 4, packed // 4
    ai_code, rest = rest % 4, rest // 4
    same, system = rest % 2 == 1, rest // 2
    ai_code = np.where(same, _CODE["tie"], ai_code)  # identical responses: a tie
    human_code = np.where(same, _CODE["tie"], human_code)
    ai = np.where(ai_code == _NONE, np.nan, ai_code / 2)
    soft = np.where(p_a == NO_OUTCOME, ai, p_a)  # no probability stored: the hard outcome
    soft = np.where(same | np.isnan(ai), 0.5, soft)
    return PairStream(
        names=tuple(names),
        judge_version_id=np.asarray(judges, dtype=np.int64)[system // (k * k)],
        system_a=index_of[system // k % k],
        system_b=index_of[system % k],
        ai=ai,
        soft=soft,
        length_diff=diff,
        human=np.where(human_code == _NONE, np.nan, human_code / 2),
    )

"""Win rates between systems: hand-computed counts and rates, ties, invalid labels,
antisymmetry, identical responses, a system against itself; length control on a pool whose
judge follows length only; PPI coverage with a biased judge."""

from __future__ import annotations

import numpy as np
import pytest

from db.label_rows import JudgmentRow
from db.labels import override_pair_label, upsert_judgments
from pipeline.evaluation import stats
from pipeline.evaluation.outcomes import PairStream
from pipeline.evaluation.win_rates import compute_win_rates, fit_comparisons
from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pair


def build_small(session) -> None:
    """Systems X, Y, Z and one judge; the comments give each pair's outcome for X."""
    judge = make_judge(session, "j1")

    def pair(name, a, b, **kwargs):
        return make_pair(session, name, system_a=a, system_b=b, **kwargs)

    p1 = pair("p1", "X", "Y")
    judge_pair(session, judge, p1, "A", 0.9)  # X wins
    label_pair(session, p1, "ann", "A")  # people: X wins
    p2 = pair("p2", "Y", "X")
    judge_pair(session, judge, p2, "A", 0.8)  # Y in slot A wins: X loses
    label_pair(session, p2, "ann", "B")  # people: X (slot B) wins
    p3 = pair("p3", "X", "Y")
    judge_pair(session, judge, p3, "tie", 0.6)  # tie
    label_pair(session, p3, "ann", "B")  # people: Y wins
    p4 = pair("p4", "Y", "X")
    judge_pair(session, judge, p4, "B", 0.7, swap_inconsistent=True)  # X wins: counts as labelled
    p5 = pair("p5", "X", "Y")
    judge_pair(session, judge, p5, "invalid", 0.0, status="invalid")  # left out, counted
    p6 = pair("p6", "X", "Y")
    upsert_judgments(
        session,
        judge_version_id=judge.id,
        rows=[JudgmentRow(p6.id, label=None, status="failed", error="boom")],
    )  # left out, counted
    p7 = pair("p7", "X", "Y", response_a="same text", response_b="same text")
    # A stored label on identical responses (e.g. imported) does not count: a tie by construction.
    judge_pair(session, judge, p7, "A", 0.99)
    label_pair(session, p7, "ann", "A")
    p8 = pair("p8", "X", "X")
    judge_pair(session, judge, p8, "A", 0.9)  # X against itself: a tie between systems
    p9 = pair("p9", "Z", "X")
    judge_pair(session, judge, p9, "B", 0.9)  # X wins against Z
    override_pair_label(
        session, pair_id=p9.id, actor="boss", label="B", reason="checked", expected_version=1
    )
    pair("p10", None, "X")  # no system in slot A: takes part in nothing
    session.commit()


def rows_by_key(session, **kwargs):
    return {(r.system, r.opponent): r for r in compute_win_rates(session, **kwargs)}


def test_hand_computed_win_rates(session):
    build_small(session)
    rows = rows_by_key(session)
    assert set(rows) == {("X", "X"), ("X", "Y"), ("Y", "X"), ("X", "Z"), ("Z", "X")}
    xy = rows[("X", "Y")]
    # W = 2 (p1, p4), L = 1 (p2), T = 2 (p3, p7 identical), invalid = 2 (p5, p6).
    assert (xy.pairs, xy.ai_wins, xy.ai_losses, xy.ai_ties, xy.ai_invalid) == (5, 2, 1, 2, 2)
    assert xy.ai_win_rate == pytest.approx((2 + 2 / 2) / 5)
    # People: p1 X, p2 X, p3 Y, p7 a tie by construction.
    assert (xy.human_pairs, xy.human_wins, xy.human_losses, xy.human_ties) == (4, 2, 1, 1)
    assert xy.human_win_rate == pytest.approx(2.5 / 4)
    yx = rows[("Y", "X")]
    assert (yx.pairs, yx.ai_wins, yx.ai_losses, yx.ai_ties, yx.ai_invalid) == (5, 1, 2, 2, 2)
    assert yx.ai_win_rate == pytest.approx(2 / 5)
    low, high = xy.ai_interval
    assert low < xy.ai_win_rate < high
    assert yx.ai_interval == pytest.approx((1 - high, 1 - low))
    assert rows[("X", "X")].ai_win_rate == 0.5
    assert rows[("X", "X")].lc_win_rate == 0.5
    assert (rows[("X", "X")].ai_ties, rows[("X", "X")].ai_wins) == (1, 0)
    xz = rows[("X", "Z")]
    assert (xz.pairs, xz.ai_wins, xz.ai_win_rate) == (1, 1, 1.0)
    assert (xz.human_pairs, xz.human_win_rate) == (1, 1.0)  # the override decides
    assert rows[("Z", "X")].ai_win_rate == 0.0


def test_antisymmetry_and_filters(session):
    build_small(session)
    rows = rows_by_key(session)
    for (system, opponent), row in rows.items():
        other = rows[(opponent, system)]
        assert (row.ai_wins, row.ai_losses, row.ai_ties) == (
            other.ai_losses,
            other.ai_wins,
            other.ai_ties,
        )
        for field in ("ai_win_rate", "human_win_rate", "lc_win_rate", "ppi_win_rate"):
            mine, theirs = getattr(row, field), getattr(other, field)
            if mine is None:
                assert theirs is None
            else:
                assert mine == pytest.approx(1 - theirs, abs=1e-12)
    only = compute_win_rates(session, system="Y")
    assert [(r.system, r.opponent) for r in only] == [("Y", "X")]
    assert compute_win_rates(session, system="X", opponent="Z")[0].ai_win_rate == 1.0


def test_identical_pairs_are_never_sent_to_the_judge(session):
    from pipeline.judging.runner import pending_pair_ids

    judge = make_judge(session, "fresh")
    same = make_pair(session, "same", response_a="one text", response_b="one text")
    other = make_pair(session, "other")
    session.commit()
    assert pending_pair_ids(session, judge.id) == [other.id]
    assert same.response_a_id == same.response_b_id


def test_wilson_is_mirror_symmetric():
    low, high = stats.wilson(0.3, 20)
    mirror = stats.wilson(0.7, 20)
    assert mirror == pytest.approx((1 - high, 1 - low))
    assert stats.wilson(0.5, 0) is None


def test_length_controlled_rate_on_a_length_only_judge(session):
    """The judge's outcome depends only on the length difference, and X writes longer answers:
    the raw win rate is far from 0.5, the length-controlled one is not."""
    rng = np.random.default_rng(3)
    judge = make_judge(session, "lengthy")
    n = 600
    diff = np.round(rng.normal(150, 200, size=n)).astype(int)  # len(X) - len(Y), characters
    p_x = 1 / (1 + np.exp(-3 * np.tanh(diff / diff.std())))
    x_wins = rng.random(n) < p_x
    for i in range(n):
        x_text = "x" * (400 + diff[i]) + f" {i:04d}"
        y_text = "y" * 400 + f" {i:04d}"
        x_first = i % 2 == 0  # X in either slot
        a, b = (x_text, y_text) if x_first else (y_text, x_text)
        pair = make_pair(
            session,
            f"len{i}",
            prompt=f"prompt {i}",
            response_a=a,
            response_b=b,
            system_a="X" if x_first else "Y",
            system_b="Y" if x_first else "X",
        )
        judge_pair(session, judge, pair, "A" if x_wins[i] == x_first else "B", 0.8)
    session.commit()
    row = rows_by_key(session)[("X", "Y")]
    assert row.ai_win_rate == pytest.approx(x_wins.mean())
    assert row.ai_win_rate > 0.65
    assert row.lc_win_rate == pytest.approx(0.5, abs=0.07)
    assert row.lc_gap == pytest.approx(row.ai_win_rate - row.lc_win_rate)
    assert row.warning and "length" in row.warning
    mirror = rows_by_key(session)[("Y", "X")]
    assert mirror.lc_win_rate == pytest.approx(1 - row.lc_win_rate, abs=1e-12)
    assert mirror.warning  # the gap is as large the other way round


def test_ppi_covers_the_truth_with_a_biased_judge():
    """200 seeded pools: people prefer X 40 % of the time, the judge's probability leans
    towards X; PPI over 100 human outcomes plus 2,000 AI outcomes covers 0.4 in >= 90 %."""
    truth, n_pool, n_human = 0.4, 2000, 100
    covered = 0
    widths = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        human = (rng.random(n_pool) < truth).astype(float)
        soft = np.clip(0.3 + 0.4 * human + rng.normal(0.15, 0.15, n_pool), 0, 1)  # biased
        labelled = np.zeros(n_pool, dtype=bool)
        labelled[rng.choice(n_pool, n_human, replace=False)] = True
        stream = PairStream(
            names=("X", "Y"),
            judge_version_id=np.ones(n_pool, dtype=np.int64),
            system_a=np.zeros(n_pool, dtype=np.int64),
            system_b=np.ones(n_pool, dtype=np.int64),
            ai=(soft > 0.5).astype(float),
            soft=soft,
            length_diff=np.zeros(n_pool),
            human=np.where(labelled, human, np.nan),
        )
        fit = fit_comparisons(stream)[(1, "X", "Y")]
        assert fit.ppi_labelled == n_human
        low, high = fit.ppi_interval
        covered += low <= truth <= high
        widths.append(high - low)
    assert soft.mean() > truth + 0.1  # the judge alone would be far off
    assert covered >= 180, covered
    assert np.median(widths) < 0.2


@pytest.mark.parametrize(
    ("keys", "index", "distinct"),
    [
        ([7, 3, 7, 0, 3], [2, 1, 2, 0, 1], [0, 3, 7]),  # a lookup table
        ([10**12, 5, 10**12], [1, 0, 1], [5, 10**12]),  # a range too wide for one: a sort
        ([], [], []),
    ],
)
def test_factorize(keys, index, distinct):
    got_index, got_distinct = stats.factorize(np.asarray(keys, dtype=np.int64))
    assert got_index.tolist() == index and got_distinct.tolist() == distinct

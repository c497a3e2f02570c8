"""Alignment figures on hand-computed cases: reliability/ECE, thresholds, position bias, drift
and the PPI interval (coverage on a synthetic pool whose truth is known)."""

from __future__ import annotations

import numpy as np
import pytest

from db.label_rows import JudgmentRow
from db.labels import judge_by_name, upsert_judgments
from db.models import AuditSample, AuditSampleItem, Pair
from db.session import session_scope
from pipeline.evaluation.alignment import alignment_report
from pipeline.evaluation.ppi import ppi_interval
from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pairs

# name: (human label or None, AI label, confidence, p_a_ab, p_a_ba, swap_inconsistent)
CASE = {
    "c1": ("A", "A", 0.55, 0.7, 0.6, False),
    "c2": ("B", "A", 0.58, 0.8, 0.4, True),
    "c3": ("A", "A", 0.75, 0.9, 0.8, False),
    "c4": ("B", "B", 0.75, 0.6, 0.3, True),
    "c5": ("A", "A", 0.95, None, None, None),
    "c6": ("tie", "B", 1.0, None, None, None),
    "u1": (None, "A", 0.9, None, None, None),
    "u2": (None, "invalid", None, None, None, None),
    "u3": (None, None, None, None, None, None),  # failed
}


@pytest.fixture
def case(db_url):
    with session_scope(db_url) as s:
        judge = make_judge(s, "judge-1")
        pairs = dict(zip(CASE, make_pairs(s, len(CASE)), strict=True))
        rows = []
        for name, (human, ai, conf, p_ab, p_ba, swap) in CASE.items():
            if human:
                label_pair(s, pairs[name], "rev1", human)
            rows.append(
                {
                    "pair_id": pairs[name].id,
                    "label": ai,
                    "confidence": conf,
                    "p_a_ab": p_ab,
                    "p_a_ba": p_ba,
                    "swap_inconsistent": swap,
                    "status": "failed" if ai is None else None,
                }
            )
        upsert_judgments(s, judge_version_id=judge.id, rows=[JudgmentRow(**r) for r in rows])
    return db_url


def test_reliability_and_ece_by_hand(case):
    with session_scope(case) as s:
        (j,) = alignment_report(s).judges
    # Compared pairs c1..c6 (valid AI label, human reference), in 10 bins:
    #   [0.5, 0.6): c1 0.55 agree, c2 0.58 no    -> n 2, conf 0.565, agreement 0.5
    #   [0.7, 0.8): c3 0.75 agree, c4 0.75 agree -> n 2, conf 0.75,  agreement 1.0
    #   [0.9, 1.0]: c5 0.95 agree, c6 1.0 no     -> n 2, conf 0.975, agreement 0.5
    # ECE = 2/6 * (|0.5-0.565| + |1-0.75| + |0.5-0.975|) = (0.065 + 0.25 + 0.475) / 3
    bins = j.reliability.bins
    assert [(b.bin_lower, b.n) for b in bins] == [(0.5, 2), (0.7, 2), (0.9, 2)]
    assert [b.mean_confidence for b in bins] == pytest.approx([0.565, 0.75, 0.975])
    assert [b.agreement for b in bins] == pytest.approx([0.5, 1.0, 0.5])
    assert j.reliability.ece == pytest.approx(0.79 / 3)
    assert j.reliability.n == 6


def test_threshold_curve_by_hand(case):
    with session_scope(case) as s:
        (j,) = alignment_report(s).judges
    curve = {round(row.threshold, 2): row for row in j.thresholds}
    assert len(curve) == 21  # 0.00, 0.05, ..., 1.00
    # 9 judged. Auto-acceptable (valid, swap-consistent): c1 .55, c3 .75, c5 .95, c6 1.0, u1 .9
    # (c2, c4 are swap-inconsistent; u2 invalid; u3 failed). Of those, human-referenced:
    # c1 agree, c3 agree, c5 agree, c6 disagree.
    expected = {
        0.0: (5, 4 / 9, 4, 3 / 4),
        0.55: (5, 4 / 9, 4, 3 / 4),  # c1 sits exactly on the threshold: accepted
        0.6: (4, 5 / 9, 3, 2 / 3),
        0.8: (3, 6 / 9, 2, 1 / 2),
        0.95: (2, 7 / 9, 2, 1 / 2),
        1.0: (1, 8 / 9, 1, 0.0),
    }
    for t, (accepted, share, compared, agreement) in expected.items():
        row = curve[t]
        assert row.auto_accepted == accepted, t
        assert row.review_share == pytest.approx(share), t
        assert row.compared_accepted == compared, t
        assert row.agreement_accepted == pytest.approx(agreement), t


def test_position_bias_by_hand(case):
    with session_scope(case) as s:
        (j,) = alignment_report(s).judges
    # Both orders scored on c1..c4. A shown first (p_a_ab > .5): all 4 -> 1.0.
    # A shown second (p_a_ba > .5): c1, c3 -> 0.5; B picked with A second: c2, c4.
    # First slot chosen: 4 (AB order) + 2 (BA order) of 8 decisions -> 0.75.
    assert j.bias.judged_both_orders == 4
    assert j.bias.pick_a_when_first == pytest.approx(1.0)
    assert j.bias.pick_a_when_second == pytest.approx(0.5)
    assert j.bias.position_bias == pytest.approx(0.5)
    assert j.bias.first_slot_rate == pytest.approx(0.75)
    assert j.bias.swap_inconsistency_rate == pytest.approx(2 / 4)


def test_drift_over_time_and_versions(case):
    with session_scope(case) as s:
        judge2 = make_judge(s, "judge-2")
        by_ext = {p.external_id: p for p in s.query(Pair)}
        # judge-2 judges c1 (agree) and c2 (agree): the common pairs with judge-1 are c1, c2.
        judge_pair(s, judge2, by_ext["p0"], "A", 0.8)
        judge_pair(s, judge2, by_ext["p1"], "B", 0.8)
    with session_scope(case) as s:
        report = alignment_report(s, time_bucket="month")
    assert {row.judge for row in report.over_time} == {"judge-1", "judge-2"}
    month = {row.judge: row for row in report.over_time}
    assert month["judge-1"].n == 6 and month["judge-1"].agreement == pytest.approx(4 / 6)
    assert month["judge-1"].period.endswith("-01")
    versions = {row.judge: row for row in report.across_versions}
    assert versions["judge-1"].common_pairs == 2
    assert versions["judge-1"].agreement_common == pytest.approx(1 / 2)  # c1 yes, c2 no
    assert versions["judge-2"].agreement_common == pytest.approx(1.0)
    assert versions["judge-2"].agreement == pytest.approx(1.0)


def test_ppi_on_db_matches_ppi_py_with_audit_sample_weights(case):
    from ppi_py import ppi_mean_ci

    with session_scope(case) as s:
        by_ext = {p.external_id: p for p in s.query(Pair)}
        judge_id = judge_by_name(s, "judge-1").id
        sample = AuditSample(name="s1", judge_version_id=judge_id, seed=1, size=4, created_by="t")
        s.add(sample)
        s.flush()
        # c1 (A, AI A), c2 (B, AI A), c3 (A, AI A), u1 (no human label yet: not counted)
        for ext, weight in (("p0", 1.0), ("p1", 3.0), ("p2", 2.0), ("p6", 1.0)):
            s.add(
                AuditSampleItem(
                    sample_id=sample.id, pair_id=by_ext[ext].id, stratum=0, weight=weight
                )
            )
        s.flush()
        report = alignment_report(s, sample_ids={judge_id: sample.id}, alpha=0.1)
        result = report.judges[0].ppi
    assert result.n_labelled == 3 and result.n_pool == 9
    # Pool predictions: AI says A on c1 c2 c3 c5 u1 -> 5 ones, 4 zeros.
    y, yhat, w = np.array([1.0, 0.0, 1.0]), np.ones(3), np.array([1.0, 3.0, 2.0])
    lower, upper = ppi_mean_ci(y, yhat, np.array([1.0] * 5 + [0.0] * 4), alpha=0.1, w=w)
    assert result.ppi.lower == pytest.approx(float(lower[0]))
    assert result.ppi.upper == pytest.approx(float(upper[0]))
    # Naive: A among the 7 valid AI labels (c1 c2 c3 c5 u1 of c1..c6 + u1).
    assert result.naive_ai_only.estimate == pytest.approx(5 / 7)


def test_ppi_covers_known_truth():
    """A pool of 20,000 pairs whose true 'A preferred' rate is known; a judge that is right
    80 % of the time and says A too often. Over 200 seeded spot-check draws of 300 pairs, the
    95 % PPI interval covers the truth at least 90 % of the time, while the naive AI-only
    estimate is biased."""
    pool_rng = np.random.default_rng(2026)
    n_pool = 20_000
    truth_labels = (pool_rng.random(n_pool) < 0.4).astype(float)
    correct = pool_rng.random(n_pool) < 0.8
    # Wrong answers lean to A: a position-biased judge.
    wrong = (pool_rng.random(n_pool) < 0.7).astype(float)
    yhat = np.where(correct, truth_labels, wrong)
    truth = truth_labels.mean()
    covered, widths, human_widths = 0, [], []
    for seed in range(200):
        idx = np.random.default_rng(seed).choice(n_pool, size=300, replace=False)
        result = ppi_interval(truth_labels[idx], yhat[idx], yhat, alpha=0.05)
        ppi = result.ppi
        covered += ppi.lower <= truth <= ppi.upper
        widths.append(ppi.upper - ppi.lower)
        human = result.human_only
        human_widths.append(human.upper - human.lower)
    assert covered / 200 >= 0.90
    assert np.mean(widths) < np.mean(human_widths)  # the AI labels buy precision
    assert abs(yhat.mean() - truth) > 0.05  # and the naive estimate would be off


def test_ppi_needs_two_labels():
    result = ppi_interval([1.0], [1.0], [1.0, 0.0])
    assert result.ppi is None and result.n_labelled == 1


def test_ppi_over_all_human_labelled_pairs_by_hand(case):
    from ppi_py import ppi_mean_ci

    with session_scope(case) as s:
        (j,) = alignment_report(s, alpha=0.1).judges
    # Spot-checked = human-referenced pairs judged by judge-1: c1..c6.
    #   human says A: c1 c3 c5 -> y    = 1 0 1 0 1 0
    #   AI says A:    c1 c2 c3 c5 -> yhat = 1 1 1 0 1 0
    # Pool: the 9 judged pairs, AI says A on c1 c2 c3 c5 u1 -> 5 ones, 4 zeros.
    y, yhat = np.array([1, 0, 1, 0, 1, 0.0]), np.array([1, 1, 1, 0, 1, 0.0])
    pool = np.array([1.0] * 5 + [0.0] * 4)
    lower, upper = ppi_mean_ci(y, yhat, pool, alpha=0.1)  # row order does not matter
    assert j.ppi.n_labelled == 6 and j.ppi.n_pool == 9
    assert j.ppi.ppi.lower == pytest.approx(float(lower[0]))
    assert j.ppi.ppi.upper == pytest.approx(float(upper[0]))
    assert j.ppi.human_only.estimate == pytest.approx(0.5)
    assert j.ppi.sample == "all human-referenced pairs"


def test_report_metrics_are_the_cli_metrics(case):
    from pipeline.evaluation.agreement import compute_metrics

    with session_scope(case) as s:
        assert alignment_report(s).metrics == compute_metrics(s)

"""The Bradley-Terry leaderboard (against a direct maximum-likelihood fit), where the judge's
ranking and the people's part, the judge's length bias, and the CLI's JSON shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.evaluation import stats
from pipeline.evaluation.leaderboard import compute_leaderboard
from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pair
from tests.helpers.scenarios import FIXTURE, build_rankings


def direct_mle(wins: np.ndarray) -> np.ndarray:
    """Bradley-Terry by maximising the log-likelihood with scipy (first strength fixed at 0),
    centred: an independent check of stats.bradley_terry."""
    from scipy.optimize import minimize

    k = wins.shape[0]

    def nll(free):
        theta = np.concatenate([[0.0], free])
        diff = theta[:, None] - theta[None, :]
        return -(wins * -np.logaddexp(0, -diff)).sum()

    theta = np.concatenate([[0.0], minimize(nll, np.zeros(k - 1), method="BFGS", tol=1e-12).x])
    return theta - theta.mean()


def test_bradley_terry_recovers_known_strengths():
    truth = np.array([-1.0, -0.2, 0.4, 0.8])
    diff = truth[:, None] - truth[None, :]
    wins = 500 * (1 / (1 + np.exp(-diff)))  # expected wins of 500 games per pair
    np.fill_diagonal(wins, 0)
    fitted = stats.bradley_terry(wins)
    assert fitted == pytest.approx(truth - truth.mean(), abs=2e-3)
    assert fitted == pytest.approx(direct_mle(wins), abs=2e-3)


def test_bradley_terry_matches_a_direct_fit_on_random_counts():
    rng = np.random.default_rng(5)
    wins = rng.integers(5, 60, size=(5, 5)).astype(float) + 0.5 * rng.integers(0, 4, (5, 5))
    np.fill_diagonal(wins, 0)
    assert stats.bradley_terry(wins) == pytest.approx(direct_mle(wins), abs=2e-3)
    batch = stats.bradley_terry(np.stack([wins, wins.T]))  # batched: each fit on its own
    assert batch[0] == pytest.approx(stats.bradley_terry(wins), abs=1e-9)
    assert batch[1] == pytest.approx(-batch[0], abs=1e-9)  # every result reversed


def test_leaderboard_by_hand(session):
    build_rankings(session)
    board = compute_leaderboard(session, resamples=200, seed=3)[0]
    assert [e.system for e in board.systems] == ["X", "Y", "Z"]
    by_name = {e.system: e for e in board.systems}
    assert [by_name[s].ai_rank for s in "XYZ"] == [1, 2, 3]
    assert [by_name[s].human_rank for s in "XYZ"] == [2, 1, 3]
    assert [by_name[s].ai_win_rate_vs_field for s in "XYZ"] == [9 / 12, 6 / 12, 3 / 12]
    assert [by_name[s].human_win_rate_vs_field for s in "XYZ"] == [4 / 8, 6 / 8, 2 / 8]
    assert board.kendall_tau == pytest.approx(1 / 3)  # (X, Y) discordant, the others not
    assert [(d.higher_by_ai, d.lower_by_ai) for d in board.adjacent_disagreements] == [("X", "Y")]
    wins = np.zeros((3, 3))
    for (first, second), (ai, _) in FIXTURE.items():
        i, j = "XYZ".index(first), "XYZ".index(second)
        wins[i, j], wins[j, i] = sum(ai), len(ai) - sum(ai)
    mle = direct_mle(wins)
    assert [by_name[s].ai_strength for s in "XYZ"] == pytest.approx(mle, abs=0.01)
    for entry in board.systems:
        low, high = entry.ai_interval
        assert low <= entry.ai_strength <= high
    again = compute_leaderboard(session, resamples=200, seed=3)[0]
    assert again == board  # seeded bootstrap: the same intervals
    other = compute_leaderboard(session, resamples=200, seed=4)[0]
    assert other.systems[0].ai_interval != board.systems[0].ai_interval


def test_cli_json_shapes_and_tables(session, cli):
    build_rankings(session)
    code, out = cli("leaderboard", "--json")
    assert code == 0, out
    [board] = json.loads(out)
    assert board["judge"] == "j1" and board["kendall_tau"] == pytest.approx(1 / 3)
    first = board["systems"][0]
    for key in (
        "system",
        "ai_strength",
        "ai_interval",
        "ai_rank",
        "human_strength",
        "human_interval",
        "human_rank",
    ):
        assert key in first, key
    assert first["system"] == "X" and first["ai_rank"] == 1 and len(first["ai_interval"]) == 2

    code, out = cli("winrate", "--json")
    assert code == 0, out
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 6  # 3 comparisons, both ways
    xy = next(r for r in rows if (r["system"], r["opponent"]) == ("X", "Y"))
    assert (xy["judge"], xy["pairs"], xy["ai_wins"], xy["ai_losses"]) == ("j1", 6, 4, 2)
    assert xy["ai_win_rate"] == pytest.approx(4 / 6)
    assert (xy["human_pairs"], xy["human_win_rate"]) == (4, 0.25)
    for key in ("ai_ties", "ai_invalid", "ai_interval", "human_interval", "ppi_win_rate"):
        assert key in xy
    for key in ("ppi_interval", "lc_win_rate", "lc_gap", "warning"):
        assert key in xy

    code, out = cli("winrate", "--system", "Z", "--vs", "X", "--json")
    assert [(r["system"], r["opponent"]) for r in map(json.loads, out.splitlines())] == [("Z", "X")]
    code, out = cli("winrate")
    assert code == 0 and "Win rates" in out and "66.7%" in out
    code, out = cli("leaderboard")
    assert code == 0 and "Kendall" in out and "disagree" in out
    code, out = cli("winrate", "--judge", "nobody")
    assert code == 2 and "unknown judge version 'nobody'" in out


def test_length_bias_in_metrics(session, cli):
    """Pairs whose responses differ by more than 30 characters count; the judge picks the
    longer one in 3 of 4 such pairs, people in 1 of 2."""
    judge = make_judge(session, "j1")
    short, long_ = "short answer", "a much longer answer " * 4  # 12 vs 84 characters

    def pair(name, a, b, ai, human=None):
        p = make_pair(session, name, prompt=name, response_a=a, response_b=b)
        judge_pair(session, judge, p, ai)
        if human:
            label_pair(session, p, "ann", human)

    pair("l1", long_, short, "A", human="A")  # longer picked by both
    pair("l2", short, long_, "B", human="A")  # judge: longer; people: shorter
    pair("l3", short, long_, "B")  # longer
    pair("l4", long_, short, "B")  # shorter
    pair("l5", long_, short, "tie", human="tie")  # ties do not count
    pair("l6", "about the same", "about the same.", "A", human="A")  # differ by 1: not counted
    session.commit()
    code, out = cli("metrics", "--json")
    assert code == 0, out
    [row] = json.loads(out)
    assert (row["ai_length_pairs"], row["ai_picked_longer"]) == (4, 3)
    assert row["ai_prefers_longer"] == 0.75
    assert (row["human_length_pairs"], row["human_picked_longer"]) == (2, 1)
    assert row["human_prefers_longer"] == 0.5

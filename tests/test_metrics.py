"""Agreement metrics on a small example computed by hand, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from factories import judge_pair, label_pair, make_judge, make_pairs

from db.label_rows import JudgmentRow
from db.labels import override_pair_label, upsert_judgments
from db.session import session_scope
from pipeline.evaluation.agreement import cohen_kappa, compute_metrics


def build_example(url: str) -> None:
    """Twelve pairs. Human labels -> reference; judge-1's label; what it counts as.

    p1  A                     -> A    ; A        compared, agree
    p2  A, A, B               -> A    ; B        compared (majority A)
    p3  B                     -> B    ; B        compared, agree
    p4  tie                   -> tie  ; tie      compared, agree (tie is a label)
    p5  tie, tie              -> tie  ; A        compared
    p6  A, B                  -> none ; A        even split: no consensus, not compared
    p7  B                     -> B    ; invalid  ai_invalid
    p8  A                     -> A    ; failed   ai_failed
    p9  (none)                -> none ; A        no human label
    p10 B, B                  -> B    ; (none)   not_judged
    p11 A, B + override B     -> B    ; B        override settles the split: compared, agree
    p12 A + override tie      -> tie  ; A        override beats the consensus: compared

    judge-2 judged only p9 (no human label): nothing to compare.
    """
    with session_scope(url) as s:
        p = make_pairs(s, 13)  # p[1]..p[12]; p[0] is never labelled by anyone
        humans = {
            1: "A",
            2: "AAB",
            3: "B",
            4: "T",
            5: "TT",
            6: "AB",
            7: "B",
            8: "A",
            10: "BB",
            11: "AB",
            12: "A",
        }
        for i, votes in humans.items():
            for k, vote in enumerate(votes):
                label_pair(s, p[i], f"rev{k}", {"A": "A", "B": "B", "T": "tie"}[vote])
        j1, j2 = make_judge(s, "judge-1"), make_judge(s, "judge-2")
        ai = {1: "A", 2: "B", 3: "B", 4: "tie", 5: "A", 6: "A", 7: "invalid", 9: "A"}
        ai.update({11: "B", 12: "A"})
        for i, label in ai.items():
            judge_pair(s, j1, p[i], label)
        upsert_judgments(
            s,
            judge_version_id=j1.id,
            rows=[JudgmentRow(p[8].id, label=None, status="failed", error="timeout")],
        )
        judge_pair(s, j2, p[9], "A")
        for i, label in ((11, "B"), (12, "tie")):
            result = override_pair_label(
                s, pair_id=p[i].id, actor="admin", label=label, reason="checked", expected_version=1
            )
            assert result.applied


@pytest.fixture
def example(db_url):
    build_example(db_url)
    return db_url


def test_metrics_by_hand(example):
    with session_scope(example) as s:
        j1, j2 = compute_metrics(s)
    assert j1["judge"] == "judge-1"
    # Pool: labelled p1-p8, p10-p12 = 11; a reference on all of those but the split p6 = 10.
    assert j1["human_labelled_pairs"] == 11
    assert j1["human_consensus_pairs"] == 10
    assert j1["override_pairs"] == 2
    assert j1["human_split_pairs"] == 1
    # Compared: p1 p2 p3 p4 p5 p11 p12 = 7; agree on p1 p3 p4 p11 = 4.
    assert j1["pairs_compared"] == 7
    assert j1["agreement"] == pytest.approx(4 / 7)
    # Confusion (rows human, columns AI):   A  B  tie   row total
    #                               A       1  1  0     2  (p1, p2)
    #                               B       0  2  0     2  (p3, p11)
    #                               tie     2  0  1     3  (p5, p12 | p4)
    #                     column total      3  3  1     n = 7
    assert j1["confusion"] == {
        "A": {"A": 1, "B": 1, "tie": 0},
        "B": {"A": 0, "B": 2, "tie": 0},
        "tie": {"A": 2, "B": 0, "tie": 1},
    }
    # p_o = 4/7 = 28/49; p_e = (2*3 + 2*3 + 3*1) / 49 = 15/49;
    # kappa = (28/49 - 15/49) / (1 - 15/49) = 13/34.
    assert j1["cohen_kappa"] == pytest.approx(13 / 34)
    assert j1["ai_invalid"] == 1  # p7
    assert j1["ai_failed"] == 1  # p8
    assert j1["not_judged"] == 1  # p10
    assert j1["pairs_compared"] + j1["ai_invalid"] + j1["ai_failed"] + j1["not_judged"] == 10
    # Totals over all of judge-1's judgments: 11 rows, 9 valid (incl. p6, p9), 1 invalid, 1 failed.
    assert (j1["judged"], j1["valid"], j1["invalid_total"], j1["failed_total"]) == (11, 9, 1, 1)

    # A judge with nothing to compare: null agreement and kappa, not a crash.
    assert j2["judge"] == "judge-2"
    assert j2["pairs_compared"] == 0
    assert j2["agreement"] is None and j2["cohen_kappa"] is None
    assert j2["not_judged"] == 10 and j2["judged"] == 1


def test_even_three_way_split_has_no_consensus(db_url):
    with session_scope(db_url) as s:
        (pair,) = make_pairs(s, 1)
        for annotator, label in (("r1", "A"), ("r2", "B"), ("r3", "tie")):
            label_pair(s, pair, annotator, label)
        judge_pair(s, make_judge(s), pair, "A")
    with session_scope(db_url) as s:
        (result,) = compute_metrics(s)
    assert result["human_consensus_pairs"] == 0 and result["human_split_pairs"] == 1
    assert result["pairs_compared"] == 0 and result["agreement"] is None


def test_kappa_edge_cases():
    empty = {h: {a: 0 for a in ("A", "B", "tie")} for h in ("A", "B", "tie")}
    assert cohen_kappa(empty) is None
    all_a = {**empty, "A": {"A": 5, "B": 0, "tie": 0}}
    assert cohen_kappa(all_a) is None  # chance agreement 1: undefined
    # Two classes, perfectly opposite: p_o = 0, p_e = 0.5 -> kappa = -1.
    opposite = {**empty, "A": {"A": 0, "B": 3, "tie": 0}, "B": {"A": 3, "B": 0, "tie": 0}}
    assert cohen_kappa(opposite) == pytest.approx(-1.0)


def test_cli_json_and_table(example, cli):
    code, out = cli("metrics", "--json")
    assert code == 0, out
    printed = json.loads(out)
    with session_scope(example) as s:
        assert printed == json.loads(json.dumps(compute_metrics(s)))
    assert [r["judge"] for r in printed] == ["judge-1", "judge-2"]
    assert printed[0]["agreement"] == pytest.approx(4 / 7)

    code, out = cli("metrics", "--judge", "judge-2", "--json")
    assert code == 0 and [r["judge"] for r in json.loads(out)] == ["judge-2"]

    code, out = cli("metrics")
    assert code == 0
    assert "judge-1" in out and "57.1%" in out and "0.382" in out and "n/a" in out

    code, out = cli("metrics", "--judge", "nope")
    assert code == 2 and "unknown judge version 'nope'" in out and "judge-1" in out

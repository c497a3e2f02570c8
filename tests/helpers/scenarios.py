"""Small worlds that tests in several folders build the same way: the agreement example whose
figures are computed by hand (tests/evaluation/test_agreement.py), and three ranked systems for
the leaderboard and win-rate tests."""

from __future__ import annotations

from db.label_rows import JudgmentRow
from db.labels import override_pair_label, upsert_judgments
from db.session import session_scope
from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pair, make_pairs


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


# (first, second): AI outcomes for first (1 win, 0 loss), human outcomes for first
FIXTURE = {
    ("X", "Y"): ([1, 1, 1, 1, 0, 0], [1, 0, 0, 0]),
    ("Y", "Z"): ([1, 1, 1, 1, 0, 0], [1, 1, 1, 0]),
    ("X", "Z"): ([1, 1, 1, 1, 1, 0], [1, 1, 1, 0]),
}


def build_rankings(session) -> None:
    """The judge ranks X > Y > Z; people rank Y > X > Z."""
    judge = make_judge(session, "j1")
    n = 0
    for (first, second), (ai, human) in FIXTURE.items():
        for i, outcome in enumerate(ai):
            n += 1
            swap = n % 2 == 0  # the first system in either slot
            pair = make_pair(
                session,
                f"r{n}",
                system_a=second if swap else first,
                system_b=first if swap else second,
            )
            judge_pair(session, judge, pair, "B" if (outcome == 1) == swap else "A")
            if i < len(human):
                label_pair(session, pair, "ann", "B" if (human[i] == 1) == swap else "A")
    session.commit()

"""Harmless rates per system (judge, people, PPI) against numbers computed by hand, the judge's
re-validation, and the rating write path (audit, roles, order), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.harmless import VerdictRow, upsert_harmless_judgments, upsert_harmless_label
from db.models import HarmlessAudit, HarmlessLabel, HarmlessRun
from pipeline.auth import users as auth
from pipeline.evaluation.harmless_rate import (
    check_harmless_judge,
    harmless_judges,
    harmless_rates,
    record_run,
)
from pipeline.review import rate_responses
from tests.helpers.factories import make_judge, make_pair

# System P wrote r1..r4 (r3 in slot B); Q wrote q1..q4. The judge's P(harmless):
P_PROBS = {"r1": 0.9, "r2": 0.8, "r3": 0.3, "r4": 0.6}


def verdict(rid: int, p: float | None, status: str = "ok", error: str | None = None):
    if status == "failed":
        return VerdictRow(rid, None, None, None, None, "failed", error)
    v = "invalid" if status == "invalid" else "harmless" if p > 0.5 else "harmful"
    return VerdictRow(rid, v, p, max(p, 1 - p), 0.9, status)


@pytest.fixture
def small(session):
    """4 responses of P, all judged, 2 with a human reference (r1 harmless, r3 harmful) and r2
    split; Q: one ok verdict, one invalid, one failed, one unrated, and one person's rating."""
    ids = {}
    for i, (mine, theirs, p_in_b) in enumerate(
        [("r1", "q1", False), ("r2", "q2", False), ("r3", "q3", True), ("r4", "q4", False)]
    ):
        a, b = (theirs, mine) if p_in_b else (mine, theirs)
        pair = make_pair(
            session,
            f"pair{i}",
            prompt=f"prompt {i}",
            response_a=a,
            response_b=b,
            system_a="Q" if p_in_b else "P",
            system_b="P" if p_in_b else "Q",
        )
        ids[a], ids[b] = pair.response_a_id, pair.response_b_id
    judge = make_judge(session, "harm-1", params={"task": "harmless"})
    make_judge(session, "pairwise-1")  # not a harmless judge
    rows = [verdict(ids[name], p) for name, p in P_PROBS.items()]
    rows += [
        verdict(ids["q1"], 0.5, "invalid"),
        verdict(ids["q2"], None, "failed", "CUDA out of memory"),
        verdict(ids["q3"], 0.2),
    ]
    upsert_harmless_judgments(session, judge_version_id=judge.id, rows=rows)
    for rid, who, label in [
        ("r1", "rita", "harmless"),
        ("r3", "rita", "harmful"),
        ("r3", "rob", "harmful"),
        ("r2", "rita", "harmless"),
        ("r2", "rob", "harmful"),  # an even split: no reference
        ("q3", "rita", "harmless"),
    ]:
        upsert_harmless_label(
            session, response_id=ids[rid], annotator=who, label=label, source="app"
        )
    session.commit()
    return judge, ids


def test_rates_by_hand(small, session):
    judge, _ = small
    assert [j.name for j in harmless_judges(session)] == ["harm-1"]
    p, q = harmless_rates(session, judge)
    assert (p.system, q.system) == ("P", "Q")
    # Judge on P: 3 of 4 harmless. Wilson, z = 1.96: centre (0.75 + z^2/8) / (1 + z^2/4) =
    # 0.62753, half z / (1 + z^2/4) * sqrt(0.75 * 0.25 / 4 + z^2 / 64) = 0.32689.
    assert (p.responses, p.judge_rated, p.judge_harmless, p.judge_harmful) == (4, 4, 3, 1)
    assert (p.judge_invalid, p.judge_failed, p.judge_unrated) == (0, 0, 0)
    assert p.judge_rate == 0.75
    assert p.judge_interval == pytest.approx((0.30064, 0.95442), abs=1e-4)
    # Mean p = 2.6 / 4 = 0.65; sample sd sqrt(0.21 / 3) = 0.264575; half 1.96 * sd / 2 = 0.259282.
    assert p.judge_mean_p == pytest.approx(0.65)
    assert p.judge_mean_p_interval == pytest.approx((0.390718, 0.909282), abs=1e-5)
    # People on P: r1 harmless, r3 harmful (2 of 2 say so), r2 split: 1 of 2 harmless.
    # Wilson(0.5, 2): centre 0.5, half z / (1 + z^2/2) * sqrt(0.125 + z^2/16) = 0.405478.
    assert (p.human_responses, p.human_harmless, p.human_split) == (2, 1, 1)
    assert p.human_rate == 0.5
    assert p.human_interval == pytest.approx((0.094522, 0.905478), abs=1e-5)
    # PPI++ (y = [1, 0] on r1, r3; yhat = [0.9, 0.3]; pool yhat = [0.9, 0.8, 0.3, 0.6]):
    # lambda = cov(y, yhat) / ((1 + n/N) var(all yhat)) = 0.15 / (1.5 * 0.0786667) = 1.27,
    # clipped to 1: estimate = mean(pool) + mean(y - yhat) = 0.65 + (0.1 - 0.3) / 2 = 0.55.
    # se = sqrt(std0(pool)^2 / 4 + std0(y - yhat)^2 / 2) = sqrt(0.0525/4 + 0.04/2) = 0.182003,
    # half = 1.96 * se = 0.356718.
    assert p.ppi_labelled == 2
    assert p.ppi_rate == pytest.approx(0.55)
    assert p.ppi_interval == pytest.approx((0.193282, 0.906718), abs=1e-5)
    # Q: q3 ok and harmful, q1 invalid, q2 failed, q4 not rated yet: 0 of 1.
    assert (q.responses, q.judge_rated, q.judge_invalid, q.judge_failed, q.judge_unrated) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert q.judge_rate == 0.0 and q.judge_mean_p == pytest.approx(0.2)
    assert q.judge_mean_p_interval is None  # one verdict: no interval
    assert q.human_rate == 1.0 and q.human_responses == 1
    assert q.ppi_rate is None and q.ppi_interval is None and q.ppi_labelled == 1
    only_q = harmless_rates(session, judge, ["Q", "nobody"])
    assert [r.system for r in only_q] == ["Q", "nobody"] and only_q[1].responses == 0
    assert only_q[1].judge_rate is None and only_q[1].human_rate is None


def test_revalidation_agreement_kappa_and_drift(small, session):
    judge, _ = small
    # People-referenced responses with an ok verdict: r1 (judge 1, people 1), r3 (0, 0),
    # q3 (0, 1). Agreement 2/3; judge harmless 1/3, people 2/3; chance agreement
    # 1/3 * 2/3 + 2/3 * 1/3 = 4/9, kappa (2/3 - 4/9) / (1 - 4/9) = 0.4.
    check = check_harmless_judge(session, judge)
    assert check.human_responses == 3
    assert check.agreement == pytest.approx(2 / 3) and check.kappa == pytest.approx(0.4)
    assert check.judge_harmless_share == pytest.approx(1 / 3)
    assert check.human_harmless_share == pytest.approx(2 / 3)
    assert check.warnings == () and check.earlier_run_id is None
    p = harmless_rates(session, judge, ["P"])[0]
    run_id = record_run(session, judge, p, check, "test")
    session.flush()
    session.execute(
        HarmlessRun.__table__.update()
        .where(HarmlessRun.id == run_id)
        .values(alignment={"agreement": 0.9})
    )
    check = check_harmless_judge(session, judge)
    assert check.earlier_run_id == run_id and check.earlier_agreement == 0.9
    assert check.warnings == (
        f"judge drift: agreement with people is 66.7%, 23.3 points below its 90.0% at report "
        f"{run_id}",
    )


def test_an_unvalidated_and_a_lenient_judge_are_named(session):
    pair = make_pair(
        session, "x", response_a="fine", response_b="nasty", system_a="P", system_b="Q"
    )
    judge = make_judge(session, "harm-2", params={"task": "harmless"})
    rows = [verdict(pair.response_a_id, 0.9), verdict(pair.response_b_id, 0.8)]
    upsert_harmless_judgments(session, judge_version_id=judge.id, rows=rows)
    (warning,) = check_harmless_judge(session, judge).warnings
    assert "harm-2 has no people-rated responses" in warning
    for rid, label in ((pair.response_a_id, "harmless"), (pair.response_b_id, "harmful")):
        upsert_harmless_label(session, response_id=rid, annotator="ann", label=label, source="app")
    # The judge calls 2 of 2 harmless, people 1 of 2: 50 points more lenient.
    (warning,) = check_harmless_judge(session, judge).warnings
    assert "calls 100% of the people-rated responses harmless, people 50%" in warning


def test_a_changed_verdict_and_rating_are_audited(small, session):
    judge, ids = small
    upsert_harmless_judgments(
        session, judge_version_id=judge.id, rows=[verdict(ids["q2"], 0.7)]
    )  # the failed one, retried
    assert upsert_harmless_label(
        session, response_id=ids["r1"], annotator="rita", label="harmful", source="app"
    )
    assert not upsert_harmless_label(  # the same again: nothing changes, nothing logged
        session, response_id=ids["r1"], annotator="rita", label="harmful", source="app"
    )
    session.commit()
    audit = session.execute(
        select(HarmlessAudit.kind, HarmlessAudit.old_value, HarmlessAudit.new_value)
        .where(HarmlessAudit.response_id.in_([ids["q2"], ids["r1"]]))
        .order_by(HarmlessAudit.id)
    ).all()
    assert [tuple(row) for row in audit] == [
        ("human", None, "harmless"),
        ("ai", "failed", "harmless"),
        ("human", "harmless", "harmful"),
    ]


@pytest.fixture
def people(session):
    made = {
        name: auth.AuthUser.of(
            auth.create_user(session, username=name, password="pw-123456", role=role)
        )
        for name, role in (("rita", "reviewer"), ("vic", "viewer"), ("ada", "admin"))
    }
    session.commit()
    return made


def test_a_viewer_cannot_rate_and_the_order_is_random_but_fixed(small, session, people):
    _, ids = small
    with pytest.raises(PermissionError):
        rate_responses.record_rating(
            session, user=people["vic"], response_id=ids["r4"], label="harmful"
        )
    with pytest.raises(PermissionError):
        rate_responses.record_skip(session, user=people["vic"], response_id=ids["r4"])
    assert rate_responses.systems(session) == ["P", "Q"]
    # ada has rated nothing: P's unrated response (r4) first, then the rated ones in hash order.
    first = rate_responses.next_response(session, username="ada", system="P")
    assert first.response_id == ids["r4"] and first.response == "r4" and first.human_ratings == 0
    assert [v.verdict for v in first.verdicts] == ["harmless"]
    assert first.verdicts[0].p_harmless == pytest.approx(0.6)
    rate_responses.record_skip(session, user=people["ada"], response_id=ids["r4"], note="later")
    rated = [ids["r1"], ids["r2"], ids["r3"]]
    shown = []
    while (view := rate_responses.next_response(session, username="ada", system="P")) is not None:
        shown.append(view.response_id)
        rate_responses.record_rating(
            session, user=people["ada"], response_id=view.response_id, label="harmless"
        )
    assert shown == sorted(rated, key=lambda r: ((r * 2654435761) % 2**32, r))
    # rita rated r1, r2, r3 already: only r4 is left for her.
    view = rate_responses.next_response(session, username="rita", system="P")
    assert view.response_id == ids["r4"]
    progress = rate_responses.progress(session, username="rita", system="P")
    assert (progress.responses, progress.rated, progress.by_you) == (4, 3, 3)
    labels = session.scalars(
        select(HarmlessLabel.annotator).where(HarmlessLabel.annotator == "ada")
    )
    assert len(list(labels)) == 3


def test_a_response_open_for_one_reviewer_is_not_shown_to_another(small, session, people):
    _, ids = small
    ada, rita = people["ada"], people["rita"]
    # rita rated r1, r2, r3: only r4 is left for her, and she holds it while it is open.
    held = rate_responses.claim_next_response(session, username="rita", system="P")
    assert held.response_id == ids["r4"]
    again = rate_responses.claim_next_response(session, username="rita", system="P")
    assert again.response_id == ids["r4"]  # a rerun of her page keeps it
    # ada is shown another response of P while rita holds r4 ...
    other = rate_responses.claim_next_response(session, username="ada", system="P")
    assert other.response_id != ids["r4"]
    # ... and r4 once rita has rated it (her claim goes with her rating).
    rate_responses.record_rating(session, user=rita, response_id=ids["r4"], label="harmless")
    for rid in (ids["r1"], ids["r2"], ids["r3"]):
        rate_responses.record_rating(session, user=ada, response_id=rid, label="harmful")
    last = rate_responses.claim_next_response(session, username="ada", system="P")
    assert last.response_id == ids["r4"]
    assert rate_responses.claim_next_response(session, username="rita", system="P") is None

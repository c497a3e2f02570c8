"""The Rate responses page and the Win rates page's Harmless rate section, headless
(streamlit.testing AppTest) on a real SQLite database. AppTest cannot press keys: it checks that
each button carries its shortcut (h, x, s) and clicks it, which is what the shortcut does; the
key presses themselves are tested in Chromium (tests/test_browser_harmless.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.harmless import VerdictRow, upsert_harmless_judgments, upsert_harmless_label
from db.models import HarmlessAudit, HarmlessLabel
from db.session import session_scope
from pipeline.auth import users as auth
from tests.helpers.factories import judge_pair, make_judge, make_pair

APP = Path(__file__).resolve().parents[2] / "app"
EVIL = "<img src=x onerror=alert(1)> ![t](http://example.com/t.png) $x$"


def page(name: str, user: auth.AuthUser | None) -> AppTest:
    at = AppTest.from_file(str(APP / "views" / f"{name}.py"), default_timeout=60)
    if user is not None:
        at.session_state["auth_user"] = user
    return at.run()


def texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "success", "error", "warning")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def harmless_table(at: AppTest):
    (frame,) = [d.value for d in at.dataframe if "judge_mean_p" in d.value.columns]
    return frame.set_index("system")


def shown_id(at: AppTest) -> int:
    caption = next(c.value for c in at.caption if c.value.startswith("response id "))
    return int(caption.split()[2])


@pytest.fixture
def rate_db(sqlite_url):
    with session_scope() as session:
        users = {
            name: auth.AuthUser.of(
                auth.create_user(session, username=name, password="pw-123456", role=role)
            )
            for name, role in (("ada", "admin"), ("rita", "reviewer"), ("vic", "viewer"))
        }
        pairwise = make_judge(session, "pairwise-1")
        harmless = make_judge(session, "harm-1", params={"task": "harmless"})
        ids = {}
        for i in range(3):
            text = EVIL if i == 0 else f"P answer {i}"
            pair = make_pair(
                session, f"p{i}", f"prompt {i}", text, f"Q answer {i}", "t", None, "P", "Q"
            )
            judge_pair(session, pairwise, pair, "A", 0.8)
            ids[i] = pair.response_a_id
            p = 0.9 - 0.3 * i  # 0.9, 0.6, 0.3
            upsert_harmless_judgments(
                session,
                judge_version_id=harmless.id,
                rows=[
                    VerdictRow(
                        ids[i], "harmless" if p > 0.5 else "harmful", p, max(p, 1 - p), 0.9, "ok"
                    )
                ],
            )
    return {"ids": ids, **users}


def test_a_reviewer_rates_by_shortcut_keys(rate_db):
    ids = set(rate_db["ids"].values())
    at = page("rate_responses", rate_db["rita"])
    assert not at.exception
    shortcuts = {b.key: b.proto.shortcut for b in at.button if b.key.startswith("rate_")}
    assert shortcuts == {"rate_h": "h", "rate_x": "x", "rate_s": "s"}
    assert at.selectbox(key="rate_system").options == ["P", "Q"]
    assert "0 of 3 responses of P rated by someone, 0 by you" in texts(at)
    first = shown_id(at)
    at.text_input(key="rate_note").input("polite refusal")
    at.button(key="rate_h").click().run()
    assert f"Response {first} rated harmless." in at.success[0].value
    assert at.text_input(key="rate_note").value == ""
    second = shown_id(at)
    at.button(key="rate_s").click().run()
    third = shown_id(at)
    at.button(key="rate_x").click().run()
    assert {first, second, third} == ids
    assert "Nothing left for you to rate" in texts(at)
    assert "2 of 3 responses of P rated by someone, 2 by you" in texts(at)
    with session_scope() as session:
        labels = session.execute(
            select(HarmlessLabel.response_id, HarmlessLabel.label, HarmlessLabel.note)
        ).all()
        audit = session.execute(
            select(HarmlessAudit.response_id, HarmlessAudit.kind, HarmlessAudit.new_value)
            .where(HarmlessAudit.actor == "rita")
            .order_by(HarmlessAudit.id)
        ).all()
    assert sorted(labels) == sorted(
        [(first, "harmless", "polite refusal"), (third, "harmful", None)]
    )
    assert [tuple(a) for a in audit] == [
        (first, "human", "harmless"),
        (second, "skip", None),
        (third, "human", "harmful"),
    ]


def test_untrusted_text_and_the_judges_verdict(rate_db):
    at = page("rate_responses", rate_db["ada"])
    while shown_id(at) != rate_db["ids"][0]:  # walk to the hostile response
        at.button(key="rate_s").click().run()
    response = next(m.value for m in at.markdown if "onerror" in m.value)
    assert "<\u2060img" in response and "!\u2060[t]" in response and "\\$x\\$" in response
    assert not any(m.proto.allow_html for m in at.markdown)
    assert "**harm\\-1**: **harmless**" in texts(at) and "P(harmless) 0.90" in texts(at)


def test_a_viewer_reads_but_cannot_rate(rate_db):
    at = page("rate_responses", rate_db["vic"])
    assert not at.exception and not [b for b in at.button if b.key.startswith("rate_")]
    assert "You are a viewer" in texts(at)
    at = page("rate_responses", None)
    assert at.warning[0].value == "Please sign in." and not at.button


def test_win_rates_page_shows_the_harmless_section(rate_db):
    ids = rate_db["ids"]
    with session_scope() as session:
        for i, label in ((0, "harmless"), (2, "harmful")):
            upsert_harmless_label(
                session, response_id=ids[i], annotator="rita", label=label, source="app"
            )
    at = page("win_rates", rate_db["rita"])
    assert not at.exception
    # The pairwise selectbox lists pairwise judges only; the harmless one has its own.
    assert at.selectbox(key="wr_judge").options == ["pairwise-1"]
    assert at.selectbox(key="wr_harmless_judge").value == "harm-1"
    table = harmless_table(at)
    # P: judge 2 of 3 harmless (0.9, 0.6 vs 0.3); people 1 of 2; mean p 0.6.
    assert table.loc["P", "judge_rate"] == pytest.approx(2 / 3)
    assert table.loc["P", "judge_mean_p"] == pytest.approx(0.6)
    assert table.loc["P", "human_rate"] == pytest.approx(0.5)
    # Q has no verdicts: every response unrated.
    assert table.loc["Q", "judge_unrated"] == 3 and table.loc["Q", "judge_rated"] == 0
    # Judge and people agree on both rated responses: agreement 100 %, kappa 1.
    assert "agreement with people 100.0% on 2 people-rated responses, Cohen's κ 1.00" in texts(at)
    assert not [w for w in at.warning if "harm" in w.value]
    # The other pages that list judge versions still work with a harmless one among them.
    for other in ("alignment", "queue", "audit"):
        assert not page(other, rate_db["rita"]).exception, other


def test_win_rates_without_pairwise_judges_still_shows_harmless_rates(sqlite_url):
    with session_scope() as session:
        rita = auth.AuthUser.of(
            auth.create_user(session, username="rita", password="pw-123456", role="reviewer")
        )
        pair = make_pair(session, "p", "prompt", "yes", "no", "t", None, "P", "Q")
        judge = make_judge(session, "harm-1", params={"task": "harmless"})
        upsert_harmless_judgments(
            session,
            judge_version_id=judge.id,
            rows=[VerdictRow(pair.response_a_id, "harmful", 0.2, 0.8, 0.9, "ok")],
        )
    at = page("win_rates", rita)
    assert not at.exception and "No pairwise judge version yet" in texts(at)
    assert harmless_table(at).loc["P", "judge_rate"] == 0
    assert any("judge harm\\-1 has no people\\-rated responses" in w.value for w in at.warning)

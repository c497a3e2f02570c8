"""Headless page tests (streamlit.testing.v1.AppTest) on a real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.models import HumanLabel, LabelAudit, Pair
from db.session import session_scope
from pipeline.auth import users as auth
from tests.helpers.factories import judge_pair, make_judge, make_pair

APP = Path(__file__).resolve().parents[2] / "app"
PASSWORD = "correct-horse"


def page(name: str, user: auth.AuthUser | None) -> AppTest:
    at = AppTest.from_file(str(APP / "views" / f"{name}.py"), default_timeout=60)
    if user is not None:
        at.session_state["auth_user"] = user
    return at.run()


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "success", "error", "warning")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def app_db(sqlite_url):
    with session_scope() as session:
        users = {
            name: auth.AuthUser.of(
                auth.create_user(session, username=name, password=PASSWORD, role=role)
            )
            for name, role in [("root", "admin"), ("rita", "reviewer"), ("vic", "viewer")]
        }
        judge = make_judge(session, "j1")
        pairs = [
            make_pair(session, f"p{i}", prompt=f"Prompt {i} with $x$ and <b>bold</b>")
            for i in range(3)
        ]
        judge_pair(
            session, judge, pairs[0], "A", 0.6, p_a_ab=0.7, p_a_ba=0.5, rationale="A is *clearer*"
        )
        judge_pair(session, judge, pairs[1], "B", 0.8, swap_inconsistent=True)
        judge_pair(session, judge, pairs[2], "A", 0.9)
        ids = [p.id for p in pairs]
    return {"url": sqlite_url, "ids": ids, **users}


def test_sign_in_gate_and_navigation(app_db):
    # Signed out: only the sign-in page, which sends the browser to the /signin form
    # (the form and the cookie: tests/auth/test_auth.py and tests/browser/test_browser_auth.py).
    at = AppTest.from_file(str(APP / "main.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "RLAIF workbench" and at.warning[0].value == "Please sign in."
    assert not at.metric and not at.button
    at.session_state["auth_user"] = app_db["rita"]  # the AppTest seam of app/guard.py
    at.run()
    assert not at.exception
    assert [m.label for m in at.metric][:3] == ["Pairs", "Judged by AI", "Human-labelled"]
    assert at.metric[0].value == "3" and at.metric[3].value == "3"
    assert "Signed in as **rita** (reviewer)" in texts(at)
    at.button(key="sign_out").click().run()
    assert "auth_user" not in at.session_state
    at.run()
    assert at.warning[0].value == "Please sign in." and not at.metric


def test_page_without_sign_in_shows_nothing(app_db):
    for name in ("home", "queue", "browse", "audit", "users"):
        at = page(name, None)
        assert not at.exception
        assert at.warning[0].value == "Please sign in." and not at.metric and not at.dataframe


def test_deactivated_user_is_signed_out(app_db):
    with session_scope() as session:
        auth.update_user(session, username="rita", actor=None, active=False)
    at = page("home", app_db["rita"])
    assert at.warning[0].value == "Please sign in." and "auth_user" not in at.session_state
    assert not at.metric


def test_label_through_the_queue(app_db):
    ids = app_db["ids"]
    at = page("queue", app_db["rita"])
    assert not at.exception
    # The swap-inconsistent pair comes first, then the lowest confidence.
    assert f"id {ids[1]}" in at.caption[0].value and "swap-inconsistent" in at.caption[0].value
    at.text_input(key="queue_note").input("checked twice")
    at.button(key="queue_b").click().run()
    assert f"Pair {ids[1]} labelled B." in at.success[0].value
    assert f"id {ids[0]}" in at.caption[0].value
    assert "A is *clearer*" in texts(at)  # the rationale
    assert at.text_input(key="queue_note").value == ""
    at.button(key="queue_s").click().run()
    at.button(key="queue_a").click().run()
    assert "Nothing left in your queue" in texts(at)
    with session_scope() as session:
        labels = session.execute(
            select(HumanLabel.pair_id, HumanLabel.label, HumanLabel.note)
        ).all()
        skips = session.scalars(select(LabelAudit.pair_id).where(LabelAudit.kind == "skip")).all()
    assert sorted(labels) == sorted([(ids[1], "B", "checked twice"), (ids[2], "A", None)])
    assert skips == [ids[0]]


def test_markdown_is_escaped(app_db):
    at = page("queue", app_db["rita"])
    prompt = next(m.value for m in at.markdown if m.value.startswith("Prompt"))
    assert "\\$x\\$" in prompt  # no LaTeX
    assert not any(m.proto.allow_html for m in at.markdown)


def test_viewer_sees_no_buttons(app_db):
    at = page("queue", app_db["vic"])
    assert not at.exception and not [b for b in at.button if b.key.startswith("queue_")]
    assert "You are a viewer" in at.info[0].value
    at = page("users", app_db["vic"])
    assert "needs the role admin" in at.error[0].value


def test_override_with_reason(app_db):
    pair_id = app_db["ids"][0]
    at = page("browse", app_db["rita"])
    assert not at.exception and len(at.dataframe) == 1
    at.selectbox(key="browse_open").select(pair_id).run()
    at.radio(key=f"override_label_{pair_id}").set_value("B")
    at.button(key=f"override_save_{pair_id}").click().run()
    assert "needs a reason" in at.error[0].value
    at.text_area(key=f"override_reason_{pair_id}").input("A misreads the question")
    at.button(key=f"override_save_{pair_id}").click().run()
    assert not at.exception and "Label set to B" in at.success[0].value
    with session_scope() as session:
        pair = session.get(Pair, pair_id)
        assert (pair.override_label, pair.version) == ("B", 2)
    # A second tab still holding version 1 is refused with a clear message, not a crash.
    stale = page("browse", app_db["root"])
    stale.selectbox(key="browse_open").select(pair_id).run()
    stale.session_state[f"browse_version_{pair_id}"] = 1
    stale.radio(key=f"override_label_{pair_id}").set_value("tie")
    stale.text_area(key=f"override_reason_{pair_id}").input("both fine")
    stale.button(key=f"override_save_{pair_id}").click().run()
    assert "changed after you opened it" in stale.error[0].value
    assert "rita set it to B" in stale.error[0].value
    # The history (the last table, once the page reruns) lists both attempts.
    frame = stale.run().dataframe[-1].value
    assert {"override", "override_refused"} <= set(frame["kind"])


def test_viewer_cannot_override(app_db):
    pair_id = app_db["ids"][0]
    at = page("browse", app_db["vic"])
    at.selectbox(key="browse_open").select(pair_id).run()
    assert not [b for b in at.button if b.key.startswith("override_save")]


def test_audit_sample_page(app_db):
    at = page("audit", app_db["rita"])
    assert not at.exception
    at.number_input(key="audit_size").set_value(2)
    at.number_input(key="audit_seed").set_value(3)
    at.button(key="audit_draw").click().run()
    assert not at.exception and "Drew 2 pairs" in at.success[0].value
    frame = at.dataframe[0].value
    assert list(frame["labelled"]) == ["0/2"]
    at.button(key="audit_label_sample").click().run()
    assert at.session_state["queue_sample_id"] == 1


def test_users_page_admin(app_db):
    at = page("users", app_db["root"])
    assert not at.exception
    assert list(at.dataframe[0].value["user"]) == ["rita", "root", "vic"]
    at.text_input(key="users_new_name").input("nina")
    at.text_input(key="users_new_password").input("password-9")
    at.selectbox(key="users_new_role").select("viewer")
    at.button(key="users_add").click().run()
    assert "Added nina" in at.success[0].value
    at.selectbox(key="users_edit_name").select("root").run()  # loads root's values
    assert at.selectbox(key="users_edit_role").value == "admin"
    at.selectbox(key="users_edit_role").select("viewer")
    at.button(key="users_save").click().run()
    assert "last active admin" in at.error[0].value
    with session_scope() as session:
        assert auth.authenticate(session, "nina", "password-9").role == "viewer"


def test_router_pages_and_sample_to_queue(app_db):
    at = AppTest.from_file(str(APP / "main.py"), default_timeout=60)
    at.session_state["auth_user"] = app_db["rita"]
    at.run()
    at.switch_page("views/audit.py").run()
    assert not at.exception and at.title[0].value == "Spot-check sample"
    at.number_input(key="audit_size").set_value(2)
    at.button(key="audit_draw").click().run()
    at.button(key="audit_label_sample").click().run()
    assert not at.exception and at.title[0].value == "Review queue"
    assert "Labelling spot-check sample #1 only." in at.info[0].value
    # A reviewer gets no Users page: the router does not even register it.
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/users.py")

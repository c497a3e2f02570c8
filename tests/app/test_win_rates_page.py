"""The Win rates page (streamlit.testing.v1.AppTest): its numbers are the CLI's, its figures
download, a reviewer's spot-check draws a sample of one comparison, and a signed-out visitor
sees nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.models import AuditSample, AuditSampleItem, Pair
from db.session import session_scope
from pipeline.auth import users as auth
from tests.helpers.scenarios import build_rankings

PAGE = Path(__file__).resolve().parents[2] / "app" / "views" / "win_rates.py"


@pytest.fixture
def users(sqlite_url):
    from db.session import get_sessionmaker

    with get_sessionmaker(sqlite_url)() as session:
        build_rankings(session)  # commits
    with session_scope(sqlite_url) as session:
        viewer = auth.create_user(session, username="vic", password="password-123", role="viewer")
        reviewer = auth.create_user(
            session, username="rita", password="password-123", role="reviewer"
        )
        return auth.AuthUser.of(viewer), auth.AuthUser.of(reviewer)


def run_page(user: auth.AuthUser | None) -> AppTest:
    import streamlit as st

    st.cache_data.clear()  # the page caches for 30 s; each test has its own database
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    if user is not None:
        at.session_state["auth_user"] = user  # what app/guard.py reads
    return at.run()


def test_viewer_sees_the_cli_numbers_and_downloads(users):
    viewer, _ = users
    at = run_page(viewer)
    assert not at.exception, at.exception
    board = at.dataframe[0].value
    assert list(board["system"]) == ["X", "Y", "Z"]
    assert list(board["ai_rank"]) == [1, 2, 3] and list(board["human_rank"]) == [2, 1, 3]
    assert any("the judge puts X just above Y" in w.value for w in at.warning)
    assert "Kendall's τ between the judge's ranking and the people's: 0.33" in " ".join(
        c.value for c in at.caption
    )
    labels = {b.proto.label for b in at.get("download_button")}
    for name in ("leaderboard", "win_rates", "comparison", "length_bias", "outcome_by_length"):
        assert f"Download {name}.csv" in labels, name
    assert not [b for b in at.button if b.key == "wr_spot_check"]  # viewers only read
    at.selectbox(key="wr_system").set_value("Y").run()
    at.selectbox(key="wr_opponent").set_value("X").run()
    assert any("**Y** against **X**: 6 pairs" in m.value for m in at.markdown)


def test_reviewer_spot_checks_one_comparison(users, sqlite_url):
    _, reviewer = users
    at = run_page(reviewer)
    at.selectbox(key="wr_system").set_value("X").run()
    at.selectbox(key="wr_opponent").set_value("Z").run()
    at.number_input(key="wr_spot_size").set_value(4).run()
    at.button(key="wr_spot_check").click().run()
    assert not at.exception, at.exception
    assert any("Drew 4 pairs" in s.value for s in at.success)
    with session_scope(sqlite_url) as session:
        sample = session.scalars(select(AuditSample)).one()
        assert sample.created_by == "rita" and "X vs Z" in sample.name
        systems = session.execute(
            select(Pair.system_a, Pair.system_b)
            .join(AuditSampleItem, AuditSampleItem.pair_id == Pair.id)
            .where(AuditSampleItem.sample_id == sample.id)
        ).all()
    assert len(systems) == 4 and all(set(pair) == {"X", "Z"} for pair in systems)


def test_signed_out_visitor_sees_nothing(users):
    at = run_page(None)
    assert [w.value for w in at.warning] == ["Please sign in."]
    assert not at.dataframe


def test_alignment_page_shows_the_length_bias_of_metrics(sqlite_url, cli):
    import json

    from db.session import get_sessionmaker
    from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pair

    short, long_ = "short", "a much longer answer than the other one, by far"
    with get_sessionmaker(sqlite_url)() as session:
        judge = make_judge(session, "j1")
        for i, (a, b, ai, human) in enumerate(
            [(long_, short, "A", "B"), (short, long_, "B", "B"), (short, long_, "A", None)]
        ):
            pair = make_pair(session, f"l{i}", prompt=f"q{i}", response_a=a, response_b=b)
            judge_pair(session, judge, pair, ai)
            if human:
                label_pair(session, pair, "ann", human)
        session.commit()
    with session_scope(sqlite_url) as session:
        viewer = auth.AuthUser.of(
            auth.create_user(session, username="vic", password="password-123", role="viewer")
        )
    code, out = cli("metrics", "--json")
    [metrics] = json.loads(out)
    assert (metrics["ai_picked_longer"], metrics["ai_length_pairs"]) == (2, 3)
    assert (metrics["human_picked_longer"], metrics["human_length_pairs"]) == (1, 2)

    import streamlit as st

    st.cache_data.clear()
    page = PAGE.parent / "alignment.py"
    at = AppTest.from_file(str(page), default_timeout=60)
    at.session_state["auth_user"] = viewer
    at.run()
    assert not at.exception, at.exception
    [table] = [d.value for d in at.dataframe if "ai_prefers_longer" in d.value.columns]
    row = table.set_index("judge").loc["j1"]
    assert row["ai_prefers_longer"] == metrics["ai_prefers_longer"] == pytest.approx(2 / 3)
    assert row["human_prefers_longer"] == metrics["human_prefers_longer"] == 0.5
    assert "Download length_bias.csv" in {b.proto.label for b in at.get("download_button")}

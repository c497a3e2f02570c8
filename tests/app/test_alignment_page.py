"""The alignment page (streamlit.testing.v1.AppTest): its numbers equal `rlaif metrics --json`,
its figures can be downloaded, and it shows nothing to a signed-out visitor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db.session import session_scope
from pipeline.auth import users as auth
from tests.helpers.scenarios import build_example

PAGE = Path(__file__).resolve().parents[2] / "app" / "views" / "alignment.py"


@pytest.fixture
def example(sqlite_url):
    build_example(sqlite_url)
    with session_scope(sqlite_url) as session:
        viewer = auth.create_user(session, username="vic", password="password-123", role="viewer")
        user = auth.AuthUser.of(viewer)
    return user


def run_page(user: auth.AuthUser | None) -> AppTest:
    import streamlit as st

    st.cache_data.clear()  # the page caches its report for 30 s; each test has its own database
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    if user is not None:
        at.session_state["auth_user"] = user  # what app/guard.py reads
    return at.run()


def test_numbers_equal_the_cli(example, cli):
    code, out = cli("metrics", "--json")
    assert code == 0
    expected = {row["judge"]: row for row in json.loads(out)}

    at = run_page(example)
    assert not at.exception, at.exception
    table = at.dataframe[0].value  # the first table on the page: the metrics
    assert list(table["judge"]) == ["judge-1", "judge-2"]
    for _, row in table.iterrows():
        cli_row = expected[row["judge"]]
        for column in (
            "judged",
            "pairs_compared",
            "ai_invalid",
            "ai_failed",
            "not_judged",
            "invalid_total",
            "failed_total",
            "human_consensus_pairs",
        ):
            assert row[column] == cli_row[column], column
        for column in ("agreement", "cohen_kappa"):
            if cli_row[column] is None:
                assert row[column] != row[column] or row[column] is None  # NaN in pandas
            else:
                assert row[column] == cli_row[column], column  # identical, not approximately
    assert expected["judge-1"]["agreement"] == pytest.approx(4 / 7)
    metric = {m.label: m.value for m in at.metric}  # judge names are escaped: judge\-1
    assert metric["ECE · judge\\-1"] == f"{abs(4 / 7 - 0.9):.3f}"  # one bin: conf 0.9, agr. 4/7
    for name, row in expected.items():  # the headline figures above the table
        label = name.replace("-", "\\-")
        for title, column in (("Agreement", "agreement"), ("Cohen κ", "cohen_kappa")):
            value = row[column]
            assert metric[f"{title} · {label}"] == ("–" if value is None else f"{value:.3f}")


def test_every_figure_downloads_as_csv(example):
    at = run_page(example)
    keys = {b.proto.id for b in at.get("download_button")}
    labels = {b.proto.label for b in at.get("download_button")}
    for name in (
        "metrics",
        "confusion",
        "reliability",
        "thresholds",
        "agreement_over_time",
        "agreement_by_version",
        "ppi",
        "position_bias",
    ):
        assert f"Download {name}.csv" in labels, name
    assert len(keys) == len(labels)
    assert len(at.get("vega_lite_chart")) >= 5  # confusion, reliability, thresholds, drift, PPI


def test_signed_out_visitor_sees_nothing(example):
    at = run_page(None)
    assert at.warning[0].value == "Please sign in."
    assert not at.dataframe and not at.metric


def test_ppi_defaults_to_the_judges_audit_sample(example):
    from db.labels import judge_by_name
    from db.models import AuditSample, AuditSampleItem, Pair

    with session_scope() as session:
        judge = judge_by_name(session, "judge-1")
        sample = AuditSample(name="spot", judge_version_id=judge.id, seed=0, size=3, created_by="t")
        session.add(sample)
        session.flush()
        for external_id in ("p1", "p2", "p3"):  # referenced, judged A / B / B by judge-1
            pair = session.query(Pair).filter_by(external_id=external_id).one()
            session.add(AuditSampleItem(sample_id=sample.id, pair_id=pair.id, stratum=0, weight=1))
        sample_id = sample.id
    at = run_page(example)
    info = at.dataframe[-2].value  # PPI inputs, just above the position-bias table
    row = info.set_index("judge").loc["judge-1"]
    assert row["sample"] == f"audit sample {sample_id}" and row["spot-checked"] == 3
    assert info.set_index("judge").loc["judge-2", "sample"] == "all human-referenced pairs"


def test_empty_database_says_what_to_do(sqlite_url):
    with session_scope(sqlite_url) as session:
        user = auth.AuthUser.of(
            auth.create_user(session, username="vic", password="password-123", role="viewer")
        )
    at = run_page(user)
    assert not at.exception and "No judge version yet" in at.info[0].value

"""Untrusted text in a real browser: pairs whose prompt, responses, id, source, judge name,
rationale, note, annotator, override reason, metadata and spot-check sample name hold every image
and HTML trick (tests/app/test_render.py), each pointing at a loopback HTTP server that records
requests. A reviewer goes through Home, Queue, Browse (list, pair, history), Spot-check and
Alignment with every expander open: the server records nothing, and the page shows the text."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import func, select

from db.labels import override_pair_label, upsert_human_label
from db.models import HumanLabel, LabelAudit, Pair
from db.session import session_scope, upgrade_database
from pipeline.auth import users as auth
from pipeline.review.spot_check import draw_audit_sample
from tests.helpers.browser_harness import failure_artifacts, open_page, sign_in, start_app
from tests.helpers.factories import judge_pair, make_judge, make_pair
from tests.helpers.journey_steps import (
    expand_all,
    pick,
    picked,
    screenshot,
    shows,
    table,
    table_when,
)
from tests.helpers.untrusted import Recorder, long, recording_server, short

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "untrusted-password"


@pytest.fixture(scope="module")
def recorder():
    with recording_server() as url:
        yield url


def _seed(u: str) -> dict[str, object]:
    with session_scope() as session:
        admin = auth.AuthUser.of(
            auth.create_user(session, username="ada", password=PASSWORD, role="admin")
        )
        judge = make_judge(session, f"judge {short(u + '/judge')}")
        pairs = []
        for n in (1, 2):
            pair = make_pair(
                session,
                f"id{n} {short(u + f'/id{n}')}",
                prompt=f"Prompt {long(u + '/prompt')}",
                response_a=f"A{n} {long(u + '/a')}",
                response_b=f"B{n} {long(u + '/b')}",
                source=f"src {short(u + '/src')}",
                meta={"note": long(u + "/meta"), f"![k]({u}/metakey)": f"<img src={u}/metav>"},
            )
            judge_pair(session, judge, pair, "A", 0.7, rationale=f"Why {long(u + '/why')}")
            pairs.append(pair)
        # The second pair carries what people wrote: a label with a note, and an override.
        upsert_human_label(
            session,
            pair_id=pairs[1].id,
            annotator=f"ann ![n]({u}/ann)"[:128],
            label="B",
            source="import",
            note=long(u + "/note"),
        )
        override_pair_label(
            session,
            pair_id=pairs[1].id,
            actor="ada",
            label="B",
            reason=long(u + "/reason"),
            expected_version=1,
        )
        draw_audit_sample(
            session,
            user=admin,
            judge_version_id=judge.id,
            size=2,
            seed=0,
            name=f"sample ![s]({u}/sample) <img src={u}/sample2>",
        )
        return {"queue": pairs[0].id, "labelled": pairs[1].id}


@pytest.fixture(scope="module")
def app(tmp_path_factory, recorder):
    home = tmp_path_factory.mktemp("untrusted")
    db_url = f"sqlite:///{home / 'untrusted.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RLAIF_HOME", str(home))
        env.setenv("RLAIF_DATABASE_URL", db_url)
        upgrade_database(db_url)
        ids = _seed(recorder)
        with start_app(home, db_url, home) as url:
            yield url, ids


def _visit(browser, path: str, ready: str) -> None:
    open_page(browser, path)
    shows(browser, ready)
    expand_all(browser)


def _counts() -> tuple[int, int]:
    with session_scope() as session:
        return (
            session.scalar(select(func.count()).select_from(HumanLabel)),
            session.scalar(select(func.count()).select_from(LabelAudit)),
        )


def test_untrusted_text_makes_the_browser_fetch_nothing(app, recorder, browser):
    url, ids = app
    before = _counts()
    with session_scope() as session:
        external_id = session.get(Pair, ids["queue"]).external_id
        history_kinds = session.scalars(
            select(LabelAudit.kind)
            .where(LabelAudit.pair_id == ids["labelled"])
            .order_by(LabelAudit.id)
        ).all()
    assert external_id == f"id1 {short(recorder + '/id1')}"  # stored as given
    with failure_artifacts(browser, "journey_untrusted"):
        sign_in(browser, url, "ada", PASSWORD)  # lands on Home, with the judge versions
        shows(browser, r"Judge versions")
        expand_all(browser)
        _visit(browser, "queue", r"pair\(s\) wait for you")
        # Shown as the text it is: the id's Markdown is visible, not rendered.
        shows(browser, re.escape(f"pair {' '.join(external_id.split())} (id {ids['queue']},"))

        _visit(browser, "browse", r"2 pairs match")
        rows = table(browser, 0)
        assert [r["source"] for r in rows] == [f"src {short(recorder + '/src')}"] * 2
        pick(browser, "browse_open", str(ids["labelled"]))
        shows(browser, r"override B")
        expand_all(browser)
        assert "override" in history_kinds
        table_when(browser, -1, lambda rows: [h.get("kind") for h in rows] == history_kinds)

        _visit(browser, "audit", r"\d of 2 labelled")
        assert picked(browser, "audit_pick").startswith(f"#1 sample ![s]({recorder}/sample)")
        _visit(browser, "alignment", r"Agreement with the humans")
        time.sleep(2)  # anything lazy would have loaded by now
        screenshot(browser, "journey_untrusted")
    assert Recorder.requests == []
    # The control, last (its favicon request would come late): the recorder does see this
    # browser when it is asked to go there.
    browser.get(f"{recorder}/control")
    assert "GET /control" in Recorder.requests
    assert _counts() == before  # looking wrote nothing

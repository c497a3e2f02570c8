"""Concurrent raters of the same responses, with real processes on SQLite and PostgreSQL: two
tabs of one reviewer racing opposite ratings, and a second reviewer. One rating per response
and reviewer survives, and the audit log chains every change (old value = the one replaced).

Without the response locks of db/harmless.py both tabs read "no rating yet", both insert, and
one fails on the unique key (or the audit records two first ratings)."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict

import pytest
from sqlalchemy import select

from db.models import HarmlessAudit, HarmlessLabel
from db.session import session_scope
from tests.db.test_concurrency import _run_processes, _users
from tests.helpers.factories import make_pair
from tests.helpers.harmless_workers import claimer, rater

pytestmark = pytest.mark.concurrency


def test_two_tabs_and_a_second_reviewer_rate_the_same_responses(db_url):
    with session_scope(db_url) as session:
        response_ids = []
        for i in range(40):
            pair = make_pair(session, f"c{i}", f"q{i}", system_a="P", system_b="Q")
            response_ids.append(pair.response_a_id)
    rita, rob = _users(db_url, "rita", "rob")
    _run_processes(
        (rater, (db_url, rita, response_ids, "harmless")),
        (rater, (db_url, rita, list(reversed(response_ids)), "harmful")),
        (rater, (db_url, rob, response_ids, "harmful")),
        (rater, (db_url, rob, response_ids, "harmful")),
    )
    with session_scope(db_url) as session:
        stored = {
            (rid, who): label
            for rid, who, label in session.execute(
                select(HarmlessLabel.response_id, HarmlessLabel.annotator, HarmlessLabel.label)
            )
        }
        chains = defaultdict(list)
        for rid, who, old, new in session.execute(
            select(
                HarmlessAudit.response_id,
                HarmlessAudit.actor,
                HarmlessAudit.old_value,
                HarmlessAudit.new_value,
            ).order_by(HarmlessAudit.id)
        ):
            chains[(rid, who)].append((old, new))
    assert len(stored) == 80  # one per response and reviewer, nothing double-counted
    assert {label for (_, who), label in stored.items() if who == "rob"} == {"harmful"}
    for key, label in stored.items():
        chain = chains[key]
        assert chain[0][0] is None and chain[-1][1] == label, (key, chain)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(chain)), (key, chain)
    # rob's second process found every rating already there: one audit row each.
    assert {len(chains[(rid, "rob")]) for rid in response_ids} == {1}
    # rita's tabs: opposite ratings, so whichever came second changed it: 2 rows each.
    assert {len(chains[(rid, "rita")]) for rid in response_ids} == {2}


def test_two_reviewers_open_the_page_at_once_and_get_different_responses(db_url, tmp_path):
    rounds = 30
    with session_scope(db_url) as session:
        for i in range(2 * rounds + 5):
            make_pair(session, f"c{i}", f"q{i}", system_a="P", system_b="Q")
    rita, rob = _users(db_url, "rita", "rob")
    outs = [tmp_path / "rita.json", tmp_path / "rob.json"]
    _run_processes(
        (claimer, (db_url, rita, rounds, str(outs[0]))),
        (claimer, (db_url, rob, rounds, str(outs[1]))),
    )
    first, second = (json.loads(out.read_text()) for out in outs)
    shown = first + second
    assert None not in shown
    # Nobody was shown a response the other held or had rated: each was rated once.
    assert len(set(shown)) == len(shown) == 2 * rounds
    with session_scope(db_url) as session:
        assert len(session.scalars(select(HarmlessLabel.id)).all()) == 2 * rounds

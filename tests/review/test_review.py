"""Review queue, browse/override and spot-check samples on real SQL (SQLite and PostgreSQL)."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import func, select

from db.app_settings import set_setting
from db.models import AuditSampleItem, HumanLabel, LabelAudit, QueueClaim
from db.session import get_sessionmaker
from pipeline.auth import users as auth
from pipeline.errors import UserError
from pipeline.review import browse, queue, spot_check
from pipeline.review.types import REQUIRED_LABELS_KEY, SKIP_KIND, QueueFilters
from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pair


def _user(session, name: str, role: str) -> auth.AuthUser:
    return auth.AuthUser.of(
        auth.create_user(session, username=name, password="password-1", role=role)
    )


@pytest.fixture
def world(session):
    """Six pairs, one per queue situation (see the comments), two judges, three users."""
    j1, j2 = make_judge(session, "j1"), make_judge(session, "j2")
    p = [
        make_pair(
            session,
            f"p{i}",
            prompt=f"prompt {i}",
            source="s1" if i % 2 else "s0",
            meta={"lang": "de" if i == 3 else "en"},
        )
        for i in range(6)
    ]
    judge_pair(session, j1, p[0], "A", 0.9, swap_inconsistent=True)  # tier 0
    judge_pair(session, j1, p[1], "A", 0.9)  # tier 1: the judges disagree
    judge_pair(session, j2, p[1], "B", 0.8)
    judge_pair(session, j1, p[2], "A", 0.55)  # tier 3, conf 0.55
    judge_pair(session, j1, p[3], "B", 0.7)  # tier 3, conf 0.7
    # p[4]: never judged (tier 4)
    judge_pair(session, j1, p[5], "A", 0.95)  # tier 2 once carol says B
    label_pair(session, p[5], "carol", "B")
    users = {
        "alice": _user(session, "alice", "reviewer"),
        "carol": _user(session, "carol", "reviewer"),
        "vera": _user(session, "vera", "viewer"),
        "root": _user(session, "root", "admin"),
    }
    session.commit()
    return {"pairs": [x.id for x in p], "j1": j1.id, "j2": j2.id, **users}


def _ids(world, *indexes):
    return [world["pairs"][i] for i in indexes]


def test_queue_order_and_k(session, world):
    assert queue.queue_pair_ids(session, username="alice", limit=10) == _ids(world, 0, 1, 2, 3, 4)
    assert queue.queue_size(session, username="alice") == 5
    set_setting(session, REQUIRED_LABELS_KEY, "2")
    # k=2: p5 (one label, AI contradicts carol) comes back, after the judge disagreement ...
    assert queue.queue_pair_ids(session, username="alice", limit=10) == _ids(
        world, 0, 1, 5, 2, 3, 4
    )
    # ... but never for carol, who labelled it.
    assert queue.queue_pair_ids(session, username="carol", limit=10) == _ids(world, 0, 1, 2, 3, 4)
    assert queue.queue_pair_ids(session, username="alice", limit=2) == _ids(world, 0, 1)
    assert queue.queue_pair_ids(session, username="alice", limit=2, exclude=_ids(world, 0)) == _ids(
        world, 1, 5
    )


def test_queue_filters(session, world):
    def ids(**kw):
        return queue.queue_pair_ids(session, username="alice", limit=10, filters=QueueFilters(**kw))

    assert ids(judge_version_id=world["j2"]) == _ids(world, 1)
    assert ids(source="s1") == _ids(world, 1, 3)
    assert ids(meta_key="lang", meta_value="de") == _ids(world, 3)
    # Without a judge: the pair's lowest confidence (p1: min(0.9, 0.8) = 0.8).
    assert ids(min_confidence=0.6, max_confidence=0.8) == _ids(world, 1, 3)
    # With a judge: that judge's confidence (p1 under j1 is 0.9).
    assert ids(judge_version_id=world["j1"], min_confidence=0.6, max_confidence=0.8) == _ids(
        world, 3
    )


def test_label_and_skip_move_on(session, world):
    alice = world["alice"]
    first = queue.next_pairs(session, username="alice")[0]
    assert first.pair_id == world["pairs"][0] and first.judgments[0].swap_inconsistent
    assert queue.record_label(session, user=alice, pair_id=first.pair_id, label="B", note=" odd ")
    queue.record_skip(session, user=alice, pair_id=world["pairs"][1], note="can't tell")
    session.commit()
    assert queue.queue_pair_ids(session, username="alice", limit=10) == _ids(world, 2, 3, 4)
    # carol skipped nothing and k=1: p0 has its label, so only p1 is added back for her.
    assert queue.queue_pair_ids(session, username="carol", limit=10) == _ids(world, 1, 2, 3, 4)
    row = session.scalar(select(HumanLabel).where(HumanLabel.annotator == "alice"))
    assert (row.label, row.note, row.source) == ("B", "odd", "app")
    skip = session.scalar(select(LabelAudit).where(LabelAudit.kind == SKIP_KIND))
    assert (skip.actor, skip.reason) == ("alice", "can't tell")


def test_an_open_pair_is_held_for_its_reviewer(session, world):
    alice, carol = world["alice"], world["carol"]
    assert queue.claim_next_pair(session, username="alice").pair_id == world["pairs"][0]
    session.commit()
    # carol is shown the next pair while alice has p0 open; alice keeps p0 on a re-render.
    assert queue.claim_next_pair(session, username="carol").pair_id == world["pairs"][1]
    assert queue.claim_next_pair(session, username="alice").pair_id == world["pairs"][0]
    assert queue.queue_pair_ids(session, username="root", limit=3) == _ids(world, 2, 3, 4)
    held = session.execute(select(QueueClaim.username, QueueClaim.pair_id)).all()
    assert sorted(held) == [("alice", world["pairs"][0]), ("carol", world["pairs"][1])]
    # k = 2: two reviewers may hold a pair at once.
    set_setting(session, REQUIRED_LABELS_KEY, "2")
    assert queue.queue_pair_ids(session, username="root", limit=2) == _ids(world, 0, 1)
    set_setting(session, REQUIRED_LABELS_KEY, "1")
    # Labelling (or skipping) lets go; the next pair is held instead.
    queue.record_label(session, user=alice, pair_id=world["pairs"][0], label="A")
    queue.record_skip(session, user=carol, pair_id=world["pairs"][1])
    assert session.scalar(select(func.count()).select_from(QueueClaim)) == 0
    assert queue.claim_next_pair(session, username="alice").pair_id == world["pairs"][1]
    # A claim that ran out no longer holds anything: carol's p2 is root's next.
    assert queue.claim_next_pair(session, username="carol", ttl_s=-1).pair_id == world["pairs"][2]
    assert queue.queue_pair_ids(session, username="root", limit=1) == _ids(world, 2)
    # Nothing left: the reviewer holds nothing.
    for pair_id in _ids(world, 2, 3, 4):
        queue.record_skip(session, user=carol, pair_id=pair_id)
    assert queue.claim_next_pair(session, username="carol") is None
    owners = session.scalars(select(QueueClaim.username)).all()
    assert owners == ["alice"]


def test_viewer_cannot_write(session, world):
    pair_id = world["pairs"][0]
    with pytest.raises(PermissionError):
        queue.record_label(session, user=world["vera"], pair_id=pair_id, label="A")
    with pytest.raises(PermissionError):
        queue.record_skip(session, user=world["vera"], pair_id=pair_id)
    with pytest.raises(PermissionError):
        browse.override(
            session, user=world["vera"], pair_id=pair_id, label="A", reason="x", expected_version=1
        )
    with pytest.raises(PermissionError):
        queue.update_queue_settings(session, user=world["alice"], required=2)
    assert session.scalar(select(HumanLabel).where(HumanLabel.annotator == "vera")) is None
    queue.update_queue_settings(session, user=world["root"], required=3, auto_accept=0.6)
    assert queue.required_labels(session) == 3


def test_auto_accept_threshold(session, world):
    queue.update_queue_settings(session, user=world["root"], auto_accept=0.6)
    # p3 (conf 0.7 >= 0.6) is auto-accepted; p2 (0.55) stays; tiers 0-2 always stay.
    assert queue.queue_pair_ids(session, username="alice", limit=10) == _ids(world, 0, 1, 2, 4)
    assert queue.queue_size(session, username="alice") == 4


def test_browse_pages_filters_and_search(session, world):
    page = browse.browse(session, sort="oldest", page=1, page_size=4)
    assert [r.pair_id for r in page.rows] == _ids(world, 0, 1, 2, 3)
    assert (page.total, page.has_next) == (6, True)
    page2 = browse.browse(session, sort="oldest", page=2, page_size=4)
    assert [r.pair_id for r in page2.rows] == _ids(world, 4, 5) and not page2.has_next
    assert page.rows[1].ai_labels == "j1: A (0.90), j2: B (0.80)"
    last = browse.browse(session, sort="newest", page_size=1).rows[0]
    assert (last.human_labels, last.human_consensus) == ("carol: B", "B")

    def ids(**kw):
        return [
            r.pair_id
            for r in browse.browse(session, filters=browse.BrowseFilters(**kw), sort="oldest").rows
        ]

    assert ids(text="PROMPT 3") == _ids(world, 3)  # case-insensitive on both databases
    assert ids(text="p4 answer b") == _ids(world, 4)  # response text
    assert ids(text="100%") == []  # LIKE wildcards are escaped
    assert ids(human="labelled") == _ids(world, 5)
    assert ids(human="B") == _ids(world, 5)
    assert ids(swap_inconsistent=True) == _ids(world, 0)
    assert ids(judge_version_id=world["j1"], ai_label="A") == _ids(world, 0, 1, 2, 5)
    assert ids(min_confidence=0.9) == _ids(world, 0, 5)
    assert [r.pair_id for r in browse.browse(session, sort="lowest confidence").rows][:2] == _ids(
        world, 2, 3
    )
    with pytest.raises(UserError):
        browse.browse(session, sort="bogus")


def test_override_history_and_stale_writer(db_url, session, world):
    pair_id = world["pairs"][2]
    with pytest.raises(UserError, match="reason"):
        browse.override(
            session, user=world["alice"], pair_id=pair_id, label="B", reason=" ", expected_version=1
        )
    maker = get_sessionmaker(db_url)
    # Both reviewers opened the pair at version 1; alice saves first.
    with maker.begin() as s1:
        first = browse.override(
            s1,
            user=world["alice"],
            pair_id=pair_id,
            label="B",
            reason="B is correct",
            expected_version=1,
        )
    with maker.begin() as s2:
        second = browse.override(
            s2,
            user=world["carol"],
            pair_id=pair_id,
            label="tie",
            reason="both fine",
            expected_version=1,
        )
    assert first.applied and first.version == 2
    assert not second.applied and "changed after you opened it" in second.message
    assert "alice set it to B" in second.message
    session.expire_all()
    detail = browse.pair_detail(session, pair_id)
    assert detail.pair.override_label == "B" and detail.pair.version == 2
    kinds = [(h.kind, h.actor, h.new_value) for h in detail.history]
    assert ("override", "alice", "B") in kinds and ("override_refused", "carol", "tie") in kinds


def test_allocate_by_hand():
    assert spot_check.allocate({0: 50, 1: 30, 4: 20}, 10) == {0: 5, 1: 3, 4: 2}
    # quotas 9.7/0.2/0.1 -> floors 9/0/0 -> at least one each -> 11 -> the biggest gives one back
    assert spot_check.allocate({0: 97, 1: 2, 2: 1}, 10) == {0: 8, 1: 1, 2: 1}
    assert spot_check.allocate({0: 3, 1: 1}, 99) == {0: 3, 1: 1}
    assert spot_check.stratum_of(0.55) == 0 and spot_check.stratum_of(0.95) == 4
    assert spot_check.stratum_of(0.9) == 4 and spot_check.stratum_of(None) == 5


def test_audit_sample_estimate_by_hand(session):
    judge = make_judge(session, "j")
    low = [make_pair(session, f"low{i}") for i in range(8)]
    high, bad = make_pair(session, "high"), make_pair(session, "bad")
    for pair in low:
        judge_pair(session, judge, pair, "A", 0.55)
    judge_pair(session, judge, high, "A", 0.95)
    judge_pair(session, judge, bad, "invalid", None, status="invalid", p_a=None)
    user = _user(session, "rev", "reviewer")
    # Population 8/1/1 and n=5: quotas 4/0.5/0.5 -> 4/1/1 after the minimum -> 3/1/1.
    sample = spot_check.draw_audit_sample(
        session, user=user, judge_version_id=judge.id, size=5, seed=7
    )
    items = session.execute(
        select(AuditSampleItem.pair_id, AuditSampleItem.stratum, AuditSampleItem.weight)
        .where(AuditSampleItem.sample_id == sample.id)
        .order_by(AuditSampleItem.pair_id)
    ).all()
    assert sorted((s, round(w, 4)) for _, s, w in items) == [(0, 2.6667)] * 3 + [(4, 1.0), (5, 1.0)]
    again = spot_check.draw_audit_sample(
        session, user=user, judge_version_id=judge.id, size=5, seed=7, name="again"
    )
    same = session.scalars(
        select(AuditSampleItem.pair_id)
        .where(AuditSampleItem.sample_id == again.id)
        .order_by(AuditSampleItem.pair_id)
    ).all()
    assert same == [pair_id for pair_id, _, _ in items]
    with pytest.raises(UserError, match="already exists"):
        spot_check.draw_audit_sample(
            session, user=user, judge_version_id=judge.id, size=5, seed=7, name="again"
        )
    assert spot_check.sample_results(session, sample.id).estimate is None
    # Label: stratum 0 agrees on 1 of 3, the confident pair agrees, the invalid one cannot.
    low_ids = [pair_id for pair_id, s, _ in items if s == 0]
    by_id = {p.id: p for p in [*low, high, bad]}
    for pair_id, label in zip(low_ids, ["A", "B", "B"], strict=True):
        label_pair(session, by_id[pair_id], "rev", label)
    label_pair(session, high, "rev", "A")
    label_pair(session, bad, "rev", "B")
    result = spot_check.sample_results(session, sample.id)
    assert result.labelled == 5
    # W = 0.8/0.1/0.1: 0.8 * 1/3 + 0.1 * 1 + 0.1 * 0
    assert result.estimate == pytest.approx(0.8 / 3 + 0.1)
    assert result.unweighted == pytest.approx(2 / 5)
    # Only stratum 0 has m_h > 1: 0.8^2 * (1/3 * 2/3) / 2 * (1 - 3/8)
    assert result.std_error == pytest.approx(math.sqrt(0.64 * (2 / 9) / 2 * 0.625))
    checks = spot_check.spot_checks(session, sample_id=sample.id)
    assert sorted(c.pair_id for c in checks) == sorted(p for p, _, _ in items)
    assert spot_check.spot_checked_pair_ids(session, judge_version_id=judge.id) == sorted(
        {p for p, _, _ in items}
    )
    # The sample restricts the queue to its pairs: all labelled now, so it is empty.
    assert (
        queue.queue_pair_ids(
            session, username="other", filters=QueueFilters(audit_sample_id=sample.id)
        )
        == []
    )


def test_role_checks_read_the_database(session, world):
    alice = world["alice"]
    auth.require_role(alice, "reviewer", "admin")
    with pytest.raises(PermissionError, match="alice is a reviewer"):
        auth.require_role(alice, "admin")
    # Demoted after signing in: the stale AuthUser still says reviewer, the database does not.
    auth.update_user(session, username="alice", actor=world["root"], role="viewer")
    with pytest.raises(PermissionError, match="viewer"):
        queue.record_label(session, user=alice, pair_id=world["pairs"][0], label="A")
    auth.update_user(session, username="alice", actor=world["root"], role="reviewer", active=False)
    with pytest.raises(PermissionError, match="no longer active"):
        queue.record_label(session, user=alice, pair_id=world["pairs"][0], label="A")
    with pytest.raises(PermissionError):
        auth.update_user(session, username="carol", actor=world["carol"], role="admin")

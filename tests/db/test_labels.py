"""The label write paths: queue state, consensus, audit log, optimistic overrides."""

import pytest
from sqlalchemy import select

from db.enums import QueueTier
from db.label_rows import HumanLabelRow
from db.labels import normalize_label, override_pair_label, upsert_human_labels
from db.models import HumanLabel, LabelAudit
from db.pair_state import refresh_pair_state
from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pairs


def test_normalize_label_aliases():
    assert [normalize_label(v) for v in ("a", "B", "TIE", "1", "2", "0", 1, 2.0, "x", None)] == [
        "A",
        "B",
        "tie",
        "A",
        "B",
        "tie",
        "A",
        "B",
        None,
        None,
    ]


def test_queue_state_and_consensus(session):
    p0, p1, p2 = make_pairs(session, 3)
    judge = make_judge(session)
    judge_pair(session, judge, p0, "A", 0.6, swap_inconsistent=True)
    judge_pair(session, judge, p1, "A", 0.7)
    label_pair(session, p1, "ann1", "B")
    label_pair(session, p2, "ann1", "A")
    label_pair(session, p2, "ann2", "B")  # even split: no consensus
    refresh_pair_state(session)  # a full recompute gives the same state as the incremental one
    session.commit()
    for pair in (p0, p1, p2):
        session.refresh(pair)
    assert p0.queue_tier == QueueTier.SWAP_INCONSISTENT and p0.min_confidence == 0.6
    assert p1.queue_tier == QueueTier.CONTRADICTS_HUMAN and p1.human_consensus == "B"
    assert p2.human_label_count == 2 and p2.human_consensus is None


def test_stale_override_is_refused_but_audited(session):
    (pair,) = make_pairs(session, 1)
    session.commit()
    first = override_pair_label(
        session, pair_id=pair.id, actor="alice", label="A", reason="clear", expected_version=1
    )
    second = override_pair_label(
        session, pair_id=pair.id, actor="bob", label="B", reason="also clear", expected_version=1
    )
    session.commit()
    assert first.applied and not second.applied
    assert "alice set it to A" in second.message
    session.refresh(pair)
    assert pair.override_label == "A" and pair.version == 2
    kinds = session.scalars(select(LabelAudit.kind).where(LabelAudit.pair_id == pair.id)).all()
    assert kinds == ["override", "override_refused"]


def test_set_wise_human_labels_match_the_row_by_row_rules(session):
    p0, p1, p2 = make_pairs(session, 3)
    label_pair(session, p0, "ann1", "A")
    session.add(HumanLabel(pair_id=p1.id, annotator="ann1", label="B", note="kept", source="app"))
    session.flush()
    rows = [
        HumanLabelRow(p0.id, "ann1", "A"),  # unchanged: no write, no audit
        HumanLabelRow(p1.id, "ann1", "A"),  # changed; note None keeps "kept"
        HumanLabelRow(p2.id, "ann2", "B", note="first"),
        HumanLabelRow(p2.id, "ann2", "tie", note="later"),  # later wins
    ]
    changed = upsert_human_labels(session, rows, source="import", reason="bulk")
    session.commit()
    assert changed == 2
    stored = session.execute(
        select(HumanLabel.pair_id, HumanLabel.label, HumanLabel.note, HumanLabel.source)
    ).all()
    assert sorted(stored) == [
        (p0.id, "A", None, "app"),
        (p1.id, "A", "kept", "import"),
        (p2.id, "tie", "later", "import"),
    ]
    audits = session.execute(
        select(LabelAudit.pair_id, LabelAudit.old_value, LabelAudit.new_value, LabelAudit.reason)
        .where(LabelAudit.reason == "bulk")
        .order_by(LabelAudit.pair_id)
    ).all()
    assert audits == [(p1.id, "B", "A", "bulk"), (p2.id, None, "tie", "bulk")]
    assert upsert_human_labels(session, rows, source="import", reason="bulk") == 0  # a re-run
    with pytest.raises(ValueError, match="not a human label"):
        bad = [HumanLabelRow(p0.id, "x", "C")]
        upsert_human_labels(session, bad, source="import", reason="r")

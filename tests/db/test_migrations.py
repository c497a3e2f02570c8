"""Schema migrations match the models; the merged-label export follows its rule."""

from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from factories import judge_pair, label_pair, make_judge, make_pairs
from sqlalchemy import select

from db.labels import override_pair_label
from db.models import Base, Snapshot, SnapshotItem
from db.session import get_engine


def test_upgrade_head_on_empty_database_matches_models(db_url):
    # db_url is a fresh database that `alembic upgrade head` just created.
    with get_engine(db_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_export_merge_rule(session, tmp_path, cli):
    pairs = make_pairs(session, 8)
    strong, weak = make_judge(session, "strong"), make_judge(session, "other")
    label_pair(session, pairs[0], "ann1", "B")  # human beats the AI label A
    judge_pair(session, strong, pairs[0], "A", 0.95)
    for annotator, label in (("a1", "A"), ("a2", "A"), ("a3", "B")):  # 2 of 3: p_chosen 2/3
        label_pair(session, pairs[1], annotator, label)
    label_pair(session, pairs[2], "a1", "A")  # split vote: no consensus, left out
    label_pair(session, pairs[2], "a2", "B")
    judge_pair(session, strong, pairs[3], "B", 0.9)  # AI used: valid, consistent, >= 0.8
    judge_pair(session, strong, pairs[4], "A", 0.7)  # below min confidence
    judge_pair(session, strong, pairs[5], "A", 0.99, swap_inconsistent=True)  # inconsistent
    judge_pair(session, strong, pairs[6], "tie", 0.9)  # ties are left out
    judge_pair(session, strong, pairs[7], "A", 0.9)  # judges disagree: left out
    judge_pair(session, weak, pairs[7], "B", 0.85)
    session.commit()
    override_pair_label(
        session, pair_id=pairs[4].id, actor="lead", label="B", reason="checked", expected_version=1
    )  # an override beats everything
    session.commit()

    code, out = cli("export", "preferences", tmp_path / "out", "--min-confidence", "0.8")
    assert code == 0, out
    records = [json.loads(line) for line in (tmp_path / "out/preferences.jsonl").open()]
    by_id = {r["pair_id"]: r for r in records}
    assert set(by_id) == {"p0", "p1", "p3", "p4"}
    assert (by_id["p0"]["chosen"], by_id["p0"]["label_source"]) == ("p0 answer B", "human")
    assert by_id["p1"]["p_chosen"] == 2 / 3 and by_id["p1"]["chosen"] == "p1 answer A"
    assert round(by_id["p1"]["margin"], 4) == round(2 * 2 / 3 - 1, 4)
    assert (by_id["p3"]["chosen"], by_id["p3"]["label_source"], by_id["p3"]["p_chosen"]) == (
        "p3 answer B",
        "ai",
        0.9,
    )
    assert (by_id["p4"]["chosen"], by_id["p4"]["label_source"]) == ("p4 answer B", "override")
    assert by_id["p3"]["prompt"] == "Which is better?"

    from datasets import load_from_disk

    dataset = load_from_disk(str(tmp_path / "out/hf_dataset"))
    assert sorted(dataset["pair_id"]) == ["p0", "p1", "p3", "p4"]
    assert {"prompt", "chosen", "rejected", "margin", "p_chosen"} <= set(dataset.column_names)
    session.expire_all()
    snapshot = session.scalars(select(Snapshot)).one()
    assert (snapshot.n_human, snapshot.n_ai, snapshot.judge_versions) == (3, 1, ["strong"])
    items = session.scalars(select(SnapshotItem)).all()
    assert {i.pair_id: i.label_source for i in items} == {
        pairs[0].id: "human",
        pairs[1].id: "human",
        pairs[3].id: "ai",
        pairs[4].id: "override",
    }
    assert sorted(len(i.human_label_ids or []) for i in items) == [0, 0, 1, 2]

"""Export snapshots (pipeline/train/snapshots.py): the merge rule that picks each pair's label,
and immutability: a folder of their own, an absolute path and a content hash that loading
checks, so a model's lineage points at the labels it was trained on."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from sqlalchemy import select

from db.labels import override_pair_label
from db.models import Snapshot, SnapshotItem
from pipeline.errors import UserError
from pipeline.train.common import load_snapshot
from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pairs


def _export(cli, *args) -> str:
    code, out = cli("export", "preferences", *args)
    assert code == 0, out
    return re.search(r"Snapshot (\w+):", out).group(1)


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


def test_two_exports_first_id_loads_first_data_from_another_folder(
    session, cli, tmp_path, monkeypatch
):
    pairs = make_pairs(session, 3)
    label_pair(session, pairs[0], "ann1", "A")
    session.commit()
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    monkeypatch.chdir(work)
    first = _export(cli, "out")  # a relative folder

    label_pair(session, pairs[1], "ann1", "B")
    session.commit()
    code, out = cli("export", "preferences", "out")  # the same folder again: refused
    assert code == 2
    assert f"{work / 'out'}: not an empty folder; a snapshot is never overwritten" in out
    assert "Traceback" not in out
    second = _export(cli, "out2")
    third = _export(cli)  # no folder: RLAIF_HOME/snapshots/<id>

    monkeypatch.chdir(elsewhere)
    dataset, info = load_snapshot(first)
    assert (dataset["pair_id"], dataset["chosen"]) == (["p0"], ["p0 answer A"])
    assert (info.id, info.path) == (first, str(work / "out"))
    dataset, info = load_snapshot(second)
    assert sorted(dataset["pair_id"]) == ["p0", "p1"]
    assert info.path == str(work / "out2")
    session.expire_all()
    rows = {s.id: s for s in session.scalars(select(Snapshot))}
    assert set(rows) == {first, second, third}
    assert rows[first].path == str(work / "out")
    assert rows[third].path.endswith(f"snapshots/{third}") and rows[third].path.startswith("/")
    assert all(len(row.content_hash) == 64 for row in rows.values())
    assert rows[first].content_hash != rows[second].content_hash


def test_changed_or_missing_files_are_a_clear_error(session, cli, tmp_path):
    pairs = make_pairs(session, 2)
    label_pair(session, pairs[0], "ann1", "A")
    session.commit()
    snapshot_id = _export(cli, tmp_path / "out")
    jsonl = tmp_path / "out" / "preferences.jsonl"
    jsonl.write_text(jsonl.read_text().replace("p0 answer A", "p0 answer X"))
    for what in (snapshot_id, str(tmp_path / "out")):  # by id, and by folder
        with pytest.raises(UserError, match="changed after the export") as error:
            load_snapshot(what)
        assert str(tmp_path / "out") in str(error.value)

    shutil.rmtree(tmp_path / "out")
    with pytest.raises(UserError, match=f"snapshot {snapshot_id}: its folder .* no longer exists"):
        load_snapshot(snapshot_id)

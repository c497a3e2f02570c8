"""Export snapshots are immutable: a folder of their own, an absolute path and a content hash
that loading checks, so a model's lineage points at the labels it was trained on."""

from __future__ import annotations

import re
import shutil

import pytest
from factories import label_pair, make_pairs
from sqlalchemy import select

from db.models import Snapshot
from pipeline.errors import UserError
from pipeline.train.common import load_snapshot


def _export(cli, *args) -> str:
    code, out = cli("export", "preferences", *args)
    assert code == 0, out
    return re.search(r"Snapshot (\w+):", out).group(1)


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

"""Issue 10, item 4, for `rlaif import labels` (human and AI): the same rules as pair files
(encodings, strict reading, JSON text of numbers and booleans, limits), on SQLite and
PostgreSQL. Helpers and messy-file writers come from test_ingest_messy."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.models import HumanLabel, JudgeVersion, Judgment, LabelAudit, Pair
from db.session import session_scope
from tests.ingest.test_ingest_messy import BOM, GOOD, excel_csv, jsonl

ANNOTATOR_MAX = HumanLabel.__table__.c.annotator.type.length


# --- labels: the same rules ---------------------------------------------------------------------


@pytest.fixture
def two_pairs(db_url, tmp_path, cli):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(jsonl({**GOOD, "id": "7"}, {**GOOD, "id": "q2", "prompt": "p2"}))
    assert cli("import", "pairs", path)[0] == 0
    with session_scope(db_url) as session:
        return dict(session.execute(select(Pair.external_id, Pair.id)).tuples().all())


def label_counts(db_url) -> tuple[int, ...]:
    with session_scope(db_url) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (HumanLabel, Judgment, LabelAudit, JudgeVersion)
        )


def test_human_labels_from_an_excel_csv_and_json_scalars(db_url, tmp_path, cli, two_pairs):
    annotator = "a" * ANNOTATOR_MAX
    path = tmp_path / "human.csv"
    path.write_bytes(
        excel_csv(
            [
                ["pair_id", "annotator", "label", "note"],
                ["7", annotator, "B", "two\nlines"],
                ["q2", "ann", "tie", ""],
            ]
        )
    )
    code, out = cli("import", "labels", path, "--kind", "human")
    assert code == 0, out
    scalars = tmp_path / "human.jsonl"
    scalars.write_bytes(jsonl({"pair_id": 7, "annotator": "bob", "label": 1, "note": True}))
    code, out = cli("import", "labels", scalars, "--kind", "human")
    assert code == 0, out
    with session_scope(db_url) as session:
        stored = {
            (h.pair_id, h.annotator, h.label, h.note) for h in session.scalars(select(HumanLabel))
        }
    assert stored == {
        (two_pairs["7"], annotator, "B", "two\nlines"),
        (two_pairs["q2"], "ann", "tie", None),
        (two_pairs["7"], "bob", "A", "true"),
    }


def test_ai_labels_keep_json_text_never_a_python_repr(db_url, tmp_path, cli, two_pairs):
    path = tmp_path / "ai.jsonl"
    path.write_bytes(
        BOM.encode()
        + jsonl(
            {"pair_id": 7, "label": False, "confidence": 0.5},
            {"pair_id": "q2", "label": 2, "confidence": "0.75", "raw": "Response B 🙂"},
        )
    )
    code, out = cli("import", "labels", path, "--kind", "ai", "--judge", "hosted")
    assert code == 0, out
    with session_scope(db_url) as session:
        stored = {
            j.pair_id: (j.label, j.confidence, j.raw_output)
            for j in session.scalars(select(Judgment))
        }
    assert stored == {
        two_pairs["7"]: ("invalid", None, "false"),
        two_pairs["q2"]: ("B", 0.75, "Response B 🙂"),
    }


BAD_LABELS = [
    # (kind, rows, extra arguments, message)
    (
        "human",
        [{"pair_id": "7", "annotator": "a" * (ANNOTATOR_MAX + 1), "label": "A"}],
        (),
        f"column 'annotator': is {ANNOTATOR_MAX + 1} characters long; the limit is {ANNOTATOR_MAX}",
    ),
    (
        "human",
        [{"pair_id": "7", "annotator": "x\x00", "label": "A"}],
        (),
        "column 'annotator': contains a NUL",
    ),
    (
        "human",
        [{"pair_id": "7", "annotator": "x", "label": "A", "note": "\ud800"}],
        (),
        "column 'note': contains a lone surrogate",
    ),
    (
        "human",
        [{"pair_id": "7", "annotator": "x", "label": {"v": "A"}}],
        (),
        "column 'label': is a JSON object, not text",
    ),
    (
        "human",
        [{"pair_id": ["7"], "annotator": "x", "label": "A"}],
        (),
        "column 'pair_id': is a JSON array",
    ),
    ("ai", [{"pair_id": "7", "label": ["A"]}], (), "column 'label': is a JSON array"),
    ("ai", [{"pair_id": "7", "label": "A", "raw": "\x00"}], (), "column 'raw': contains a NUL"),
    (
        "ai",
        [{"pair_id": "7", "label": "A", "confidence": True}],
        (),
        "column 'confidence': true is not a number",
    ),
]


@pytest.mark.parametrize(
    ("kind", "rows", "extra", "message"),
    BAD_LABELS,
    ids=[
        "annotator-too-long",
        "annotator-nul",
        "note-surrogate",
        "label-object",
        "pair-id-array",
        "ai-label-array",
        "ai-raw-nul",
        "ai-confidence-bool",
    ],
)
def test_bad_labels_are_one_line_exit_2_and_write_nothing(
    db_url, tmp_path, cli, two_pairs, kind, rows, extra, message
):
    before = label_counts(db_url)
    path = tmp_path / "labels.jsonl"
    good = {"pair_id": "q2", "annotator": "ok", "label": "A"}
    path.write_bytes(jsonl(good, *rows))
    judge = ("--judge", "j") if kind == "ai" else ()
    code, out = cli("import", "labels", path, "--kind", kind, *judge, *extra)
    assert code == 2, out
    assert f"labels.jsonl: line 2: {message}" in out
    assert out.strip().count("\n") == 0
    assert label_counts(db_url) == before


def test_a_judge_name_over_the_limit_is_refused(db_url, tmp_path, cli, two_pairs):
    from pipeline.ingest.values import JUDGE_NAME_MAX

    path = tmp_path / "ai.jsonl"
    path.write_bytes(jsonl({"pair_id": "7", "label": "A"}))
    code, out = cli("import", "labels", path, "--kind", "ai", "--judge", "j" * (JUDGE_NAME_MAX + 1))
    assert code == 2 and f"--judge: is {JUDGE_NAME_MAX + 1} characters long" in out
    assert label_counts(db_url) == (0, 0, 0, 0)
    code, out = cli("import", "labels", path, "--kind", "ai", "--judge", "j" * JUDGE_NAME_MAX)
    assert code == 0, out

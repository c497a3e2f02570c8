"""`rlaif import pairs|labels`: every format, --map, --chosen-rejected, bad input, idempotency."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import HumanLabel, Judgment, LabelAudit, Pair, Prompt, Response
from db.session import session_scope

PACKAGE_DATA = Path(__file__).resolve().parents[2] / "pipeline" / "data"
ROWS = [
    {
        "id": "q1",
        "prompt": "What is 2+2?",
        "response_a": "4",
        "response_b": "5",
        "metadata": {"topic": "math"},
    },
    {
        "id": "q2",
        "prompt": "Capital of France?",
        "response_a": "Paris",
        "response_b": "Lyon",
        "metadata": {"topic": "geo"},
    },
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}
            )
    return path


def counts(db_url):
    with session_scope(db_url) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (Pair, Prompt, Response, HumanLabel, Judgment, LabelAudit)
        )


def pairs_by_id(db_url):
    with session_scope(db_url) as session:
        return {
            p.external_id: (p.prompt.text, p.response_a.text, p.response_b.text, p.meta, p.source)
            for p in session.scalars(select(Pair))
        }


def test_every_format_gives_the_same_pairs(db_url, tmp_path, cli):
    import pandas as pd
    from datasets import Dataset

    paths = {
        "jsonl": write_jsonl(tmp_path / "pairs.jsonl", ROWS),
        "json": tmp_path / "pairs.json",
        "csv": write_csv(tmp_path / "pairs.csv", ROWS),
        "parquet": tmp_path / "pairs.parquet",
        "hf": tmp_path / "pairs_dataset",
    }
    paths["json"].write_text(json.dumps(ROWS))
    pd.DataFrame(ROWS).to_parquet(paths["parquet"])
    Dataset.from_list(ROWS).save_to_disk(str(paths["hf"]))
    expected = {
        "q1": ("What is 2+2?", "4", "5", {"topic": "math"}, "s"),
        "q2": ("Capital of France?", "Paris", "Lyon", {"topic": "geo"}, "s"),
    }
    for kind, path in paths.items():
        code, out = cli("import", "pairs", path, "--source", "s")
        assert code == 0, (kind, out)
        assert pairs_by_id(db_url) == expected, kind
    assert counts(db_url)[:3] == (2, 2, 4)  # each format re-imported the same rows: no duplicates
    assert "0 new, 2 already present" in out


def test_map_renames_columns_and_extra_columns_become_metadata(db_url, tmp_path, cli):
    rows = [{"uid": "m1", "question": "Hi?", "good": "Hello", "bad": "Go away", "lang": "en"}]
    path = write_jsonl(tmp_path / "mapped.jsonl", rows)
    code, out = cli(
        "import",
        "pairs",
        path,
        "--map",
        "uid=id",
        "--map",
        "question=prompt",
        "--map",
        "good=response_a",
        "--map",
        "bad=response_b",
    )
    assert code == 0, out
    assert pairs_by_id(db_url) == {"m1": ("Hi?", "Hello", "Go away", {"lang": "en"}, "mapped")}


HH_ROWS = [
    {
        "chosen": f"\n\nHuman: question {i}?\n\nAssistant: sure\n\nHuman: and then?\n\n"
        f"Assistant: good answer {i}",
        "rejected": f"\n\nHuman: question {i}?\n\nAssistant: sure\n\nHuman: and then?\n\n"
        f"Assistant: bad answer {i}",
    }
    for i in range(12)
]


def test_chosen_rejected_splits_hh_dialogues_into_prompt_and_final_turns(db_url, tmp_path, cli):
    path = write_jsonl(tmp_path / "hh.jsonl", HH_ROWS)
    code, out = cli("import", "pairs", path, "--chosen-rejected")
    assert code == 0, out
    with session_scope(db_url) as session:
        pairs = session.scalars(select(Pair).order_by(Pair.id)).all()
        labels = {h.pair_id: h for h in session.scalars(select(HumanLabel))}
        slots = []
        for index, pair in enumerate(pairs):
            assert (
                pair.prompt.text
                == f"Human: question {index}?\n\nAssistant: sure\n\nHuman: and then?"
            )
            label = labels[pair.id]
            assert (label.annotator, label.source) == ("dataset", "import")
            chosen = pair.response_a.text if label.label == "A" else pair.response_b.text
            rejected = pair.response_b.text if label.label == "A" else pair.response_a.text
            assert (chosen, rejected) == (f"good answer {index}", f"bad answer {index}")
            slots.append(label.label)
            assert pair.human_consensus == label.label
    assert 0 < slots.count("A") < len(slots)  # the coin puts chosen in both slots
    # The same file always gives the same slots, even in a fresh database.
    with session_scope(db_url) as session:
        session.execute(LabelAudit.__table__.delete())
        session.execute(HumanLabel.__table__.delete())
        session.execute(Pair.__table__.delete())
    assert cli("import", "pairs", path, "--chosen-rejected")[0] == 0
    with session_scope(db_url) as session:
        again = [
            h.label
            for h in session.scalars(select(HumanLabel).join(Pair).order_by(Pair.external_id))
        ]
    assert sorted(again) == sorted(slots)


def test_bundled_hh_rlhf_sample_imports(sqlite_url, cli):
    code, out = cli(
        "import", "pairs", PACKAGE_DATA / "hh_rlhf_harmless_sample.jsonl", "--chosen-rejected"
    )
    assert code == 0, out
    assert "300 pairs read: 300 new" in out and "300 human labels" in out


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (
            '{"id": "a", "prompt": "p", "response_a": "x", "response_b": "y"}\n{"id": "b", "prom',
            (),
            "bad.jsonl: line 2: malformed JSON",
        ),
        (
            '{"id": "a", "prompt": "p", "response_a": "x"}\n',
            (),
            "bad.jsonl: line 1: column 'response_b': missing required column",
        ),
        (
            '{"id": "a", "prompt": "  ", "response_a": "x", "response_b": "y"}\n',
            (),
            "bad.jsonl: line 1: column 'prompt': is empty",
        ),
        (
            # Issue 10: an empty response is real data (kept, see test_ingest_messy.py); a row
            # with nothing in it is not.
            '{"id": "a", "prompt": "", "response_a": "", "response_b": " "}\n',
            (),
            "bad.jsonl: line 1: prompt, response_a, response_b are all empty",
        ),
        (
            '{"id": "a", "prompt": "p", "response_a": "x", "response_b": "y"}\n'
            '{"id": "a", "prompt": "p", "response_a": "x", "response_b": "z"}\n',
            (),
            "bad.jsonl: line 2: column 'id': id 'a' already used with other content at line 1",
        ),
        (
            '{"id": "a", "prompt": "p", "response_a": "x", "response_b": "y"}\n',
            ("--map", "oops"),
            "--map 'oops': expected SRC=DST",
        ),
        (
            '{"id": "a", "prompt": "p", "response_a": "x", "response_b": "y"}\n',
            ("--map", "question=prompt"),
            "line 1: column 'question': --map names a column",
        ),
        (
            '{"chosen": "no dialogue", "rejected": "other"}\n',
            ("--chosen-rejected",),
            "line 1: column 'chosen': no shared dialogue",
        ),
    ],
)
def test_bad_pairs_input_names_the_place_and_writes_nothing(
    db_url, tmp_path, cli, content, extra, message
):
    # A good row comes first, so a half-import would leave it behind.
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    code, out = cli("import", "pairs", path, *extra)
    assert code == 2
    assert message in out
    assert counts(db_url) == (0, 0, 0, 0, 0, 0)


def test_existing_id_with_other_content_is_an_error(db_url, tmp_path, cli):
    assert cli("import", "pairs", write_jsonl(tmp_path / "first.jsonl", ROWS))[0] == 0
    changed = [ROWS[0], {**ROWS[1], "response_b": "Marseille"}]
    code, out = cli("import", "pairs", write_jsonl(tmp_path / "second.jsonl", changed))
    assert code == 2
    assert "second.jsonl: line 2: column 'id': id 'q2' is already in the database" in out
    assert pairs_by_id(db_url)["q2"][2] == "Lyon"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("pairs.txt", "hello", "pairs.txt: unsupported file type"),
        ("pairs.parquet", "not parquet at all", "pairs.parquet: unreadable Parquet"),
        ("pairs.jsonl", b"\xff\xfe\x00bad", "pairs.jsonl: unreadable"),
        ("missing.jsonl", None, "missing.jsonl: no such file"),
    ],
)
def test_unsupported_or_unreadable_files(db_url, tmp_path, cli, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    code, out = cli("import", "pairs", path)
    assert code == 2 and message in out
    assert counts(db_url) == (0, 0, 0, 0, 0, 0)


def test_labels_import_human_and_ai(db_url, tmp_path, cli):
    cli("import", "pairs", write_jsonl(tmp_path / "pairs.jsonl", ROWS))
    human = write_csv(
        tmp_path / "human.csv",
        [
            {"pair_id": "q1", "annotator": "ann", "label": "a", "note": "clear"},
            {"pair_id": "q2", "annotator": "ann", "label": "2", "note": ""},
        ],
    )
    ai = write_jsonl(
        tmp_path / "ai.jsonl",
        [
            {"pair_id": "q1", "label": "1", "confidence": 0.9},
            {"pair_id": "q2", "label": "Response B, clearly", "raw": "Response B, clearly"},
        ],
    )
    for _ in range(2):  # the second run is idempotent
        assert cli("import", "labels", human, "--kind", "human")[0] == 0
        code, out = cli("import", "labels", ai, "--kind", "ai", "--judge", "gpt-x")
        assert code == 0, out
    with session_scope(db_url) as session:
        humans = {
            (h.pair_id, h.annotator, h.label, h.note) for h in session.scalars(select(HumanLabel))
        }
        ai_rows = {
            j.pair_id: (j.label, j.status, j.confidence, j.p_a, j.raw_output)
            for j in session.scalars(select(Judgment))
        }
        ids = dict(session.execute(select(Pair.external_id, Pair.id)).tuples().all())
    assert humans == {(ids["q1"], "ann", "A", "clear"), (ids["q2"], "ann", "B", None)}
    assert ai_rows == {
        ids["q1"]: ("A", "ok", 0.9, 0.9, None),
        ids["q2"]: ("invalid", "invalid", None, None, "Response B, clearly"),
    }
    assert counts(db_url)[3:] == (2, 2, 2)  # no duplicates; audit: one row per human label


@pytest.mark.parametrize(
    ("rows", "kind", "message"),
    [
        (
            [{"pair_id": "q1", "annotator": "x", "label": "maybe"}],
            "human",
            "human.jsonl: line 1: column 'label': 'maybe' is not A, B or tie",
        ),
        (
            [{"pair_id": "nope", "annotator": "x", "label": "A"}],
            "human",
            "human.jsonl: line 1: column 'pair_id': unknown pair_id 'nope'",
        ),
        (
            [{"pair_id": "q1", "label": "A"}],
            "human",
            "human.jsonl: line 1: column 'annotator': missing required column",
        ),
        (
            [
                {"pair_id": "q1", "annotator": "x", "label": "A"},
                {"pair_id": "q2", "annotator": "x", "label": "A", "confidence": 2},
            ],
            "ai",
            "human.jsonl: line 2: column 'confidence': 2.0 is not in [0, 1]",
        ),
    ],
)
def test_bad_labels_write_nothing(db_url, tmp_path, cli, rows, kind, message):
    cli("import", "pairs", write_jsonl(tmp_path / "pairs.jsonl", ROWS))
    path = write_jsonl(tmp_path / "human.jsonl", rows)
    extra = ("--judge", "j") if kind == "ai" else ()
    code, out = cli("import", "labels", path, "--kind", kind, *extra)
    assert code == 2 and message in out, out
    assert counts(db_url)[3:5] == (0, 0)

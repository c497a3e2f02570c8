"""Systems on pairs: imported as columns or through --map, checked (a string of at most 256
characters), filtered in browse, carried to Argilla as metadata."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from db.models import Pair, System
from pipeline.review.browse import BrowseFilters, browse, system_choices
from tests.helpers.factories import make_pair


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_import_reads_system_columns(session, tmp_path, cli):
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"id": "s1", "prompt": "q", "response_a": "a1", "response_b": "b1",
             "system_a": "model-x", "system_b": "model-y"},
            {"id": "s2", "prompt": "q", "response_a": "a2", "response_b": "b2",
             "system_a": "  ", "system_b": None},  # blank: no system
            {"id": "s3", "prompt": "q", "response_a": "a3", "response_b": "b3", "other": 1},
        ],
    )  # fmt: skip
    code, out = cli("import", "pairs", path)
    assert code == 0, out
    got = {
        p.external_id: (p.system_a, p.system_b, p.meta)
        for p in session.scalars(select(Pair).order_by(Pair.id))
    }
    assert got == {
        "s1": ("model-x", "model-y", {}),  # columns, not metadata
        "s2": (None, None, {}),
        "s3": (None, None, {"other": 1}),
    }
    code, out = cli("import", "pairs", path)  # a re-run is idempotent
    assert code == 0 and "0 new, 3 already present" in out, out


def test_import_maps_columns_to_systems(session, tmp_path, cli):
    path = tmp_path / "arena.csv"
    path.write_text(
        "question,answer_1,answer_2,model_1,model_2\nq1,first answer,second answer,gpt-x,llama-y\n"
    )
    code, out = cli(
        "import", "pairs", path,
        "--map", "question=prompt", "--map", "answer_1=response_a", "--map", "answer_2=response_b",
        "--map", "model_1=system_a", "--map", "model_2=system_b",
    )  # fmt: skip
    assert code == 0, out
    pair = session.scalars(select(Pair)).one()
    assert (pair.system_a, pair.system_b) == ("gpt-x", "llama-y")
    assert pair.response_a.text_length == len("first answer")  # filled on insert


def test_bad_systems_are_one_line_errors_and_write_nothing(session, tmp_path, cli):
    good = {"prompt": "q", "response_a": "a", "response_b": "b"}
    for rows, message in (
        (
            [{**good, "id": "ok"}, {**good, "id": "long", "system_a": "m" * 257}],
            "long.jsonl: line 2: column 'system_a': is 257 characters long; the limit is 256",
        ),
        (
            [{**good, "id": "list", "system_b": ["x"]}],
            "list.jsonl: line 1: column 'system_b': is a JSON array, not text",
        ),
    ):
        name = message.split(".jsonl")[0]
        code, out = cli("import", "pairs", write_jsonl(tmp_path / f"{name}.jsonl", rows))
        assert code == 2 and message in out, out
        assert "Traceback" not in out
    assert session.scalar(select(func.count()).select_from(Pair)) == 0


def test_browse_filters_by_system(session):
    make_pair(session, "b1", system_a="X", system_b="Y")
    make_pair(session, "b2", system_a="Y", system_b="Z")
    make_pair(session, "b3")
    session.commit()
    assert system_choices(session) == ["X", "Y", "Z"]

    def ids(system):
        page = browse(session, filters=BrowseFilters(system=system), sort="oldest")
        return [row.external_id for row in page.rows]

    assert ids("Y") == ["b1", "b2"]
    assert ids("Z") == ["b2"]
    assert ids(None) == ["b1", "b2", "b3"]
    row = browse(session, filters=BrowseFilters(system="X")).rows[0]
    assert (row.system_a, row.system_b) == ("X", "Y")


def test_argilla_record_carries_systems(session):
    from pipeline.argilla.records import record_content

    pair = make_pair(session, "a1", system_a="X", system_b="Y")
    bare = make_pair(session, "a2")
    session.commit()
    assert record_content(pair, None, None, 1)["metadata"]["system_a"] == "X"
    assert record_content(pair, None, None, 1)["metadata"]["system_b"] == "Y"
    assert "system_a" not in record_content(bare, None, None, 1)["metadata"]


def test_every_writer_stores_the_system_ids_of_the_names(session, tmp_path, cli):
    """The importer passes ids it looked up (adding new names); other writers (here the ORM,
    as the test factories and the policy evaluation write) get them from the column default."""
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"id": "i1", "prompt": "q", "response_a": "a1", "response_b": "b1",
             "system_a": "model-x", "system_b": "model-y"},
            {"id": "i2", "prompt": "q", "response_a": "a2", "response_b": "b2",
             "system_a": "model-y", "system_b": None},
        ],
    )  # fmt: skip
    code, out = cli("import", "pairs", path)
    assert code == 0, out
    session.commit()  # the CLI wrote through its own session: a fresh read
    make_pair(session, "o1", system_a="model-z", system_b="model-x")
    session.commit()
    ids = dict(session.execute(select(System.name, System.id)).tuples().all())
    assert sorted(ids) == ["model-x", "model-y", "model-z"]  # each name once
    got = {
        p.external_id: (p.system_a_id, p.system_b_id)
        for p in session.scalars(select(Pair).order_by(Pair.id))
    }
    assert got == {
        "i1": (ids["model-x"], ids["model-y"]),
        "i2": (ids["model-y"], None),
        "o1": (ids["model-z"], ids["model-x"]),
    }

"""Issue 10, item 4: real, uncleaned data. Every value is kept exactly or the import says why:
one line naming file, line/row and column, exit code 2, nothing written. Run on SQLite and
PostgreSQL (`db_url`), because the limits must hold the same on both."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest

from db.models import Pair
from tests.ingest.test_ingest import counts, pairs_by_id

# Real public data kept outside the repository, in the checkout's sibling folder ../shared/data.
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
BOM = "\ufeff"
HEADER = ["id", "prompt", "response_a", "response_b"]
ID_MAX = Pair.__table__.c.external_id.type.length
SOURCE_MAX = Pair.__table__.c.source.type.length
GOOD = {"id": "good", "prompt": "p", "response_a": "x", "response_b": "y"}


def excel_csv(rows: list[list[str]]) -> bytes:
    """What Excel writes for "CSV UTF-8": a BOM, CRLF row ends, LF inside quoted cells."""
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return (BOM + out.getvalue()).encode("utf-8")


def jsonl(*rows: dict | str) -> bytes:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def imported(db_url) -> dict[str, tuple]:
    return pairs_by_id(db_url)


# --- accepted: every value as the file has it ---------------------------------------------------


def test_excel_csv_utf8_keeps_its_id_column_and_every_value(db_url, tmp_path, cli):
    path = tmp_path / "excel.csv"
    rows = [
        [*HEADER, "lang"],
        ["e1", 'Café, "quoted"?', "line one\nline two", "", "fr"],
        ["e2", "Emoji 🙂", "", "  ", "en"],
        ["e3", "Plain", "A", "B", ""],
    ]
    path.write_bytes(excel_csv(rows))
    code, out = cli("import", "pairs", path, "--source", "s" * SOURCE_MAX)
    assert code == 0, out
    assert "3 pairs read: 3 new" in out and "2 pairs have an empty response" in out
    assert imported(db_url) == {
        "e1": ('Café, "quoted"?', "line one\nline two", "", {"lang": "fr"}, "s" * SOURCE_MAX),
        "e2": ("Emoji 🙂", "", "  ", {"lang": "en"}, "s" * SOURCE_MAX),
        "e3": ("Plain", "A", "B", {"lang": ""}, "s" * SOURCE_MAX),
    }
    code, out = cli("import", "pairs", path, "--source", "s" * SOURCE_MAX)
    assert code == 0 and "3 pairs read: 0 new, 3 already present" in out  # idempotent


def test_json_numbers_and_booleans_are_stored_as_their_json_text(db_url, tmp_path, cli):
    path = tmp_path / "scalars.jsonl"
    path.write_bytes(
        jsonl(
            '{"id": 7, "prompt": "Is it?", "response_a": true, "response_b": false}',
            '{"id": true, "prompt": "How many?", "response_a": 3, "response_b": 2.5}',
            '{"id": "s3", "prompt": 10, "response_a": "-1", "response_b": -0.5}',
        )
    )
    code, out = cli("import", "pairs", path)
    assert code == 0, out
    assert "6 numbers or booleans in text columns were stored as their JSON text" in out
    assert imported(db_url) == {
        "7": ("Is it?", "true", "false", {}, "scalars"),
        "true": ("How many?", "3", "2.5", {}, "scalars"),
        "s3": ("10", "-1", "-0.5", {}, "scalars"),
    }


def test_empty_responses_are_kept_and_counted(db_url, tmp_path, cli):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(
        jsonl(
            {"id": "a", "prompt": "p1", "response_a": "", "response_b": "yes"},
            {"id": "b", "prompt": "p2", "response_a": "no", "response_b": None},
            {"id": "c", "prompt": "p3", "response_a": "", "response_b": ""},
            {"id": "d", "prompt": "p4", "response_a": "x", "response_b": "y"},
        )
    )
    code, out = cli("import", "pairs", path)
    assert code == 0, out
    assert "4 pairs read: 4 new" in out and "3 pairs have an empty response" in out
    assert {k: v[1:3] for k, v in imported(db_url).items()} == {
        "a": ("", "yes"),
        "b": ("no", ""),
        "c": ("", ""),
        "d": ("x", "y"),
    }


@pytest.mark.parametrize("name", ["bom.jsonl", "bom.jsonl.gz", "bom.json", "bom.csv"])
def test_a_bom_is_accepted_in_every_text_format(db_url, tmp_path, cli, name):
    row = {"id": "b1", "prompt": "Bonjour", "response_a": "Salut", "response_b": "Allô"}
    if name.endswith(".csv"):
        data = excel_csv([list(row), list(row.values())])
    elif name.endswith(".json"):
        data = (BOM + json.dumps([row], indent=2)).encode()
    else:
        data = BOM.encode() + jsonl(row)
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    code, out = cli("import", "pairs", path)
    assert code == 0, out
    assert imported(db_url) == {"b1": ("Bonjour", "Salut", "Allô", {}, "bom")}


def test_csv_fields_of_any_size_import(db_url, tmp_path, cli):
    big = "long answer " * 50_000  # 600,000 characters; csv's default limit is 131,072
    path = tmp_path / "big.csv"
    path.write_bytes(excel_csv([HEADER, ["big", "p", big, "short"]]))
    code, out = cli("import", "pairs", path)
    assert code == 0, out
    assert imported(db_url)["big"][1] == big


def test_limits_are_inclusive_on_both_databases(db_url, tmp_path, cli):
    long_id = "i" * ID_MAX
    path = tmp_path / "edge.jsonl"
    path.write_bytes(jsonl({**GOOD, "id": long_id}))
    code, out = cli("import", "pairs", path, "--source", "s" * SOURCE_MAX)
    assert code == 0, out
    assert list(imported(db_url)) == [long_id]


# --- real public data, re-saved as a person would ---------------------------------------------


def test_hh_rlhf_resaved_with_a_bom_gives_the_same_pairs(db_url, tmp_path, cli):
    original = SHARED_DATA / "hh-rlhf-harmless-base-test.jsonl.gz"
    text = gzip.decompress(original.read_bytes()).decode("utf-8")
    rows = [json.loads(line) for line in text.splitlines()]
    empty = sum(
        any(not row[key].rsplit("\n\nAssistant:", 1)[1].strip() for key in ("chosen", "rejected"))
        for row in rows
    )
    resaved = tmp_path / "hh-bom.jsonl.gz"
    resaved.write_bytes(gzip.compress((BOM + text.replace("\n", "\r\n")).encode("utf-8")))
    code, out = cli("import", "pairs", resaved, "--chosen-rejected")
    assert code == 0, out
    assert f"{len(rows)} pairs read: {len(rows)} new" in out
    assert f"{empty} pairs have an empty response" in out and empty == 4
    # The original file finds every pair already there with the same content.
    code, out = cli("import", "pairs", original, "--chosen-rejected")
    assert code == 0 and f"{len(rows)} pairs read: 0 new, {len(rows)} already present" in out


@pytest.mark.parametrize("form", ["excel.csv", "bom.json"])
def test_llmbar_resaved_as_excel_csv_or_bom_json_round_trips(db_url, tmp_path, cli, form):
    rows = json.loads((SHARED_DATA / "llmbar-natural.json").read_text(encoding="utf-8"))
    path = tmp_path / f"llmbar-{form}"
    if form.endswith(".csv"):
        table = [["input", "output_1", "output_2", "label"]]
        table += [[r["input"], r["output_1"], r["output_2"], str(r["label"])] for r in rows]
        path.write_bytes(excel_csv(table))
    else:
        path.write_bytes((BOM + json.dumps(rows, indent=1, ensure_ascii=False)).encode())
    mapping = ("--map", "input=prompt", "--map", "output_1=response_a")
    code, out = cli("import", "pairs", path, *mapping, "--map", "output_2=response_b")
    assert code == 0, out
    assert f"{len(rows)} pairs read: {len(rows)} new" in out
    stored = sorted(imported(db_url).values())
    label = str if form.endswith(".csv") else int  # a CSV cell is text; JSON keeps the number
    expected = [
        (r["input"], r["output_1"], r["output_2"], {"label": label(r["label"])}, path.stem)
        for r in rows
    ]
    assert stored == sorted(expected)


# --- refused: one line naming file, line/row and column; exit 2; nothing written ------------

DEEP = '{"id": "d", "prompt": "p", "response_a": "x", "response_b": "y", "metadata": '
DEEP += "[" * 5000 + "]" * 5000 + "}"
BAD_PAIRS = [
    # (file name, content, extra arguments, message)
    (
        "bad.csv",
        excel_csv([HEADER, ["good", "p", "x", "y"]]) + b'b2,p,x,"never closed\r\nb3,p,x,y\r\n',
        (),
        "bad.csv: row 3 (line 3): malformed CSV: unexpected end of data; a quote opened here",
    ),
    (
        "bad.csv",
        excel_csv([HEADER, ["good", "p", "x", "y"], ["b2", "p", "x", "y", "stray"]]),
        (),
        "bad.csv: row 3: cell 5 has no column: the row has 5 cells, the header 4",
    ),
    (
        "bad.csv",
        excel_csv([HEADER, ["good", "p", "x", "y"], ["b2", "p", "x"]]),
        (),
        "bad.csv: row 3: column 'response_b': missing: the row has 3 cells, the header 4",
    ),
    (
        "bad.csv",
        excel_csv([[*HEADER, "prompt"], ["good", "p", "x", "y", "q"]]),
        (),
        "bad.csv: row 1: column 'prompt': appears twice in the header",
    ),
    (
        "bad.csv",
        excel_csv([HEADER, ["good", "p", "x", "y"], ["", "", "", ""]]),
        (),
        "bad.csv: row 3: prompt, response_a, response_b are all empty",
    ),
    (
        "bad.csv",
        excel_csv([HEADER, ["good", "p", "x", "y"]]) + b"b2,p,caf\xe9,y\r\n",
        (),
        "bad.csv: line 3: invalid UTF-8 (byte 0xe9) at character 9",
    ),
    (
        "bad.jsonl",
        jsonl(GOOD) + b'{"id": "b", "prompt": "p\xff", "response_a": "x", "response_b": "y"}\n',
        (),
        "bad.jsonl: line 2: invalid UTF-8 (byte 0xff) at character 25",
    ),
    (
        "bad.jsonl",
        jsonl(GOOD, '{"id": "b", "prompt": "p", "response_a": "cut \\ud83d", "response_b": "y"}'),
        (),
        "bad.jsonl: line 2: column 'response_a': contains a lone surrogate (U+D83D",
    ),
    (
        "bad.jsonl",
        jsonl(
            GOOD, '{"id": "b", "prompt": "p", "response_a": "x", "response_b": ' + "9" * 5000 + "}"
        ),
        (),
        "bad.jsonl: line 2: column 'response_b': a number with 5000 digits",
    ),
    (
        "bad.jsonl",
        jsonl(GOOD, DEEP),
        (),
        "bad.jsonl: line 2: column 'metadata': is nested too deeply",
    ),
    (
        "bad.jsonl",
        jsonl(GOOD, '{"id": "b", "prompt": "p", "response_a": NaN, "response_b": "y"}'),
        (),
        "bad.jsonl: line 2: column 'response_a': NaN is not valid JSON",
    ),
    (
        "bad.jsonl",
        jsonl(GOOD, {"id": "b", "prompt": "p", "response_a": {"text": "hi"}, "response_b": "y"}),
        (),
        "bad.jsonl: line 2: column 'response_a': is a JSON object, not text",
    ),
    (
        "bad.jsonl",
        jsonl(GOOD, {"id": "b", "prompt": "p", "response_a": "x", "response_b": ["y", 1]}),
        (),
        "bad.jsonl: line 2: column 'response_b': is a JSON array with text in it",
    ),
    (
        "bad.jsonl",
        jsonl(GOOD, {"id": "b", "prompt": "p\x00q", "response_a": "x", "response_b": "y"}),
        (),
        "bad.jsonl: line 2: column 'prompt': contains a NUL character at character 2",
    ),
    (
        "bad.jsonl",
        jsonl(GOOD, {**GOOD, "id": "b", "metadata": {"note": "a\x00"}}),
        (),
        "bad.jsonl: line 2: column 'metadata': contains a NUL character",
    ),
    (
        "bad.jsonl",
        jsonl(GOOD, {**GOOD, "id": "b", "origin": "\x00"}),
        (),
        "bad.jsonl: line 2: column 'origin': contains a NUL character",
    ),
    (
        "bad.jsonl",
        jsonl(GOOD, {**GOOD, "id": "i" * (ID_MAX + 1)}),
        (),
        f"bad.jsonl: line 2: column 'id': is {ID_MAX + 1} characters long; the limit is {ID_MAX}",
    ),
    (
        "bad.jsonl",
        jsonl({**GOOD, "question": "q"}),
        ("--map", "question=prompt"),
        "bad.jsonl: line 1: column 'prompt': --map question=prompt: the file already has",
    ),
    (
        "bad.jsonl",
        jsonl(GOOD),
        ("--source", "s" * (SOURCE_MAX + 1)),
        f"--source: is {SOURCE_MAX + 1} characters long; the limit is {SOURCE_MAX}",
    ),
    (
        "bad.json",
        f'[\n  {json.dumps(GOOD)},\n  {{"id": "b", "prompt": "\\udc00", "response_a": "x", '
        '"response_b": "y"}\n]'.encode(),
        (),
        "bad.json: item 2 (line 3): column 'prompt': contains a lone surrogate (U+DC00",
    ),
]


BAD_PAIR_IDS = [
    "csv-unclosed-quote",
    "csv-extra-cell",
    "csv-missing-cell",
    "csv-duplicate-header",
    "csv-blank-row",
    "csv-bad-utf8",
    "jsonl-bad-utf8",
    "lone-surrogate",
    "5000-digits",
    "deep-nesting",
    "nan",
    "object",
    "array",
    "nul-text",
    "nul-metadata",
    "nul-extra-column",
    "id-too-long",
    "map-onto-existing",
    "source-too-long",
    "json-array-item",
]


@pytest.mark.parametrize(("name", "content", "extra", "message"), BAD_PAIRS, ids=BAD_PAIR_IDS)
def test_bad_pairs_are_one_line_exit_2_and_write_nothing(
    db_url, tmp_path, cli, name, content, extra, message
):
    path = tmp_path / name
    path.write_bytes(content)
    code, out = cli("import", "pairs", path, *extra)
    assert code == 2, out
    assert message in out
    assert out.strip().count("\n") == 0 and "Traceback" not in out
    assert counts(db_url) == (0, 0, 0, 0, 0, 0)


def test_a_truncated_jsonl_gz_names_the_line_where_it_stops(db_url, tmp_path, cli):
    rows = [{**GOOD, "id": f"r{i}", "prompt": f"prompt {i}"} for i in range(3)]
    plain = jsonl(*rows)
    # Level 0 stores the bytes as they are (10-byte header, 5-byte block header), so the cut
    # lands at a known place: 10 bytes into line 3.
    whole = gzip.compress(plain, compresslevel=0)
    cut = 15 + plain.index(b"\n", plain.index(b"\n") + 1) + 1 + 10
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[:cut])
    code, out = cli("import", "pairs", path)
    assert code == 2, out
    assert "cut.jsonl.gz: line 3: the compressed file is cut short or damaged" in out
    assert "Aborted" not in out and counts(db_url) == (0, 0, 0, 0, 0, 0)


def test_bytes_from_parquet_are_refused(db_url, tmp_path, cli):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": ["good", "b"],
            "prompt": ["p", "p"],
            "response_a": pa.array([b"x", b"\x80raw"], type=pa.binary()),
            "response_b": ["y", "y"],
        }
    )
    pq.write_table(table, tmp_path / "bytes.parquet")
    code, out = cli("import", "pairs", tmp_path / "bytes.parquet")
    assert code == 2, out
    assert "bytes.parquet: row 1: column 'response_a': is bytes, not text" in out
    assert counts(db_url) == (0, 0, 0, 0, 0, 0)


def test_valid_data_is_never_rewritten_by_a_failed_import(db_url, tmp_path, cli):
    first = tmp_path / "first.jsonl"
    first.write_bytes(jsonl(GOOD))
    assert cli("import", "pairs", first)[0] == 0
    before = imported(db_url)
    second = tmp_path / "second.jsonl"
    second.write_bytes(jsonl(GOOD, {**GOOD, "id": "new"}, {**GOOD, "id": "x", "prompt": "\x00"}))
    assert cli("import", "pairs", second)[0] == 2
    assert imported(db_url) == before and counts(db_url)[:3] == (1, 1, 2)

"""Read records from JSONL, JSON (array), CSV, Parquet or a saved Hugging Face dataset folder.

Each record comes with its location ("line 3", "row 3", "item 3 (line 40)"), so an error names
where it is. Text files are UTF-8, with or without a BOM; anything the reader cannot take (bad
UTF-8, a cut-off .gz, malformed JSON or CSV) is an InputError naming the line, never a traceback.
"""

from __future__ import annotations

import csv
import gzip
import re
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.errors import InputError, UserError
from pipeline.ingest.jsontext import parse_json

SUPPORTED = ".jsonl, .jsonl.gz, .json, .csv, .parquet, or a saved Hugging Face dataset folder"
_SPACE = re.compile(r"[ \t\r\n]*")


@dataclass(frozen=True)
class SourceRecord:
    where: str  # "line 3" / "row 3": what an error message names
    values: dict[str, Any]


class RecordFile:
    """A file of records: `columns` (when the format declares them), `total`, and iteration."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(self.path, None, None, "no such file or folder")
        self.kind = self._kind()
        self.columns: list[str] | None = None
        self.total: int | None = None

    def _kind(self) -> str:
        name = self.path.name.lower()
        if self.path.is_dir():
            if (self.path / "dataset_info.json").exists() or (self.path / "state.json").exists():
                return "hf"
            if (self.path / "dataset_dict.json").exists():
                return "hf"
            raise InputError(self.path, None, None, f"not a saved dataset folder; use {SUPPORTED}")
        for suffix, kind in (
            (".jsonl.gz", "jsonl"),
            (".jsonl", "jsonl"),
            (".ndjson", "jsonl"),
            (".json", "json"),
            (".csv", "csv"),
            (".parquet", "parquet"),
        ):
            if name.endswith(suffix):
                return kind
        raise InputError(self.path, None, None, f"unsupported file type; use {SUPPORTED}")

    def __iter__(self) -> Iterator[SourceRecord]:
        try:
            yield from getattr(self, f"_read_{self.kind}")()
        except OSError as error:
            raise InputError(self.path, None, None, f"unreadable: {error}") from None

    # --- text: UTF-8 lines, BOM dropped, errors by line ---------------------------------------

    def _open(self, mode: str = "rt"):
        opener = gzip.open if self.path.name.lower().endswith(".gz") else open
        if mode == "rb":
            return opener(self.path, "rb")
        # utf-8-sig drops a BOM (Excel's "CSV UTF-8" writes one); newline="" as csv wants it.
        return opener(self.path, mode, encoding="utf-8-sig", newline="")

    def _lines(self) -> Iterator[tuple[int, str]]:
        """(line number, text with its line ending) of a UTF-8 file, gzipped or not."""
        try:
            with self._open("rb") as handle:
                if handle.read(2) in (b"\xff\xfe", b"\xfe\xff"):
                    raise InputError(self.path, None, None, "unreadable: UTF-16; save as UTF-8")
            with self._open() as handle:
                yield from enumerate(handle, start=1)
        except UnicodeDecodeError:
            raise self._utf8_error() from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            problem = f"the compressed file is cut short or damaged ({error})"
            raise InputError(self.path, self._last_gzip_line(), None, problem) from None

    def _last_gzip_line(self) -> int:
        """The line in which a damaged .gz stops (the text reader loses the last chunk)."""
        decompressor, newlines = zlib.decompressobj(wbits=31), 0
        with open(self.path, "rb") as handle:
            while chunk := handle.read(1 << 16):
                try:
                    newlines += decompressor.decompress(chunk).count(b"\n")
                except zlib.error:
                    break
                if decompressor.eof:  # another gzip member may follow
                    rest = decompressor.unused_data
                    decompressor = zlib.decompressobj(wbits=31)
                    newlines += decompressor.decompress(rest).count(b"\n") if rest else 0
        return newlines + 1

    def _utf8_error(self) -> InputError:
        """The first line that is not UTF-8 (the text reader only knows a byte offset)."""
        with self._open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    column = len(raw[: error.start].decode("utf-8", errors="replace")) + 1
                    return InputError(
                        self.path,
                        number,
                        None,
                        f"invalid UTF-8 (byte 0x{raw[error.start]:02x}) at character {column}; "
                        "save the file as UTF-8",
                    )
        return InputError(self.path, None, None, "invalid UTF-8; save the file as UTF-8")

    def _read_jsonl(self) -> Iterator[SourceRecord]:
        for number, line in self._lines():
            if not line.strip():
                continue
            value = parse_json(self.path, number, line)
            if not isinstance(value, dict):
                raise InputError(self.path, number, None, "expected a JSON object")
            yield SourceRecord(f"line {number}", value)

    def _read_json(self) -> Iterator[SourceRecord]:
        text = "".join(line for _, line in self._lines())
        start = _SPACE.match(text).end()
        if text.startswith("[", start):
            items = list(self._json_array(text, start + 1))
        else:
            values = parse_json(self.path, None, text)
            if isinstance(values, dict) and isinstance(values.get("data"), list):
                items = [(f"item {n}", v) for n, v in enumerate(values["data"], start=1)]
            else:
                raise InputError(self.path, None, None, "expected a JSON array of objects")
        self.total = len(items)
        for where, value in items:
            if not isinstance(value, dict):
                raise InputError(self.path, where, None, "expected a JSON object")
            yield SourceRecord(where, value)

    def _json_array(self, text: str, index: int) -> Iterator[tuple[str, Any]]:
        """Items of a top-level array, parsed one by one so that each knows its line."""
        line, counted, number = 1, 0, 0
        index = _SPACE.match(text, index).end()
        if text.startswith("]", index):
            end = index + 1
        else:
            while True:
                line += text.count("\n", counted, index)
                counted, number = index, number + 1
                where = f"item {number} (line {line})"
                value, index = parse_json(self.path, where, text, start=index, partial=True)
                yield where, value
                index = _SPACE.match(text, index).end()
                if text.startswith(",", index):
                    index = _SPACE.match(text, index + 1).end()
                    continue
                if not text.startswith("]", index):
                    line += text.count("\n", counted, index)
                    raise InputError(self.path, line, None, "malformed JSON: expected ',' or ']'")
                end = index + 1
                break
        if text[end:].strip():
            line = text.count("\n", 0, end) + 1
            raise InputError(self.path, line, None, "malformed JSON: text after the array")

    # --- CSV: strict, any field size ----------------------------------------------------------

    def _read_csv(self) -> Iterator[SourceRecord]:
        _lift_field_size_limit()
        reader = csv.reader((line for _, line in self._lines()), strict=True)
        header = self._csv_row(reader, 1)
        if header is None:
            self.columns = []
            return
        for column in header:
            if header.count(column) > 1:
                raise InputError(self.path, "row 1", column, "appears twice in the header")
        self.columns = header
        row = 1
        while (cells := self._csv_row(reader, row + 1)) is not None:
            row += 1  # a blank line is a row too, as a spreadsheet shows it
            if not cells:
                continue
            if len(cells) != len(header):
                self._cell_count_error(header, cells, row)
            yield SourceRecord(f"row {row}", dict(zip(header, cells, strict=True)))

    def _csv_row(self, reader, row: int) -> list[str] | None:
        line = reader.line_num + 1
        try:
            return next(reader, None)
        except csv.Error as error:
            hint = "; a quote opened here is never closed" if "end of data" in str(error) else ""
            raise InputError(
                self.path, f"row {row} (line {line})", None, f"malformed CSV: {error}{hint}"
            ) from None

    def _cell_count_error(self, header: list[str], cells: list[str], row: int) -> None:
        counts = f"the row has {len(cells)} cells, the header {len(header)}"
        if len(cells) < len(header):
            raise InputError(self.path, f"row {row}", header[len(cells)], f"missing: {counts}")
        raise InputError(
            self.path, f"row {row}", None, f"cell {len(header) + 1} has no column: {counts}"
        )

    # --- columnar formats ---------------------------------------------------------------------

    def _read_parquet(self) -> Iterator[SourceRecord]:
        import pyarrow.parquet as pq

        try:
            table = pq.ParquetFile(self.path)
        except Exception as error:  # pyarrow raises several types for a bad file
            raise InputError(self.path, None, None, f"unreadable Parquet: {error}") from None
        self.columns = table.schema_arrow.names
        self.total = table.metadata.num_rows
        number = 0
        for batch in table.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                number += 1
                yield SourceRecord(f"row {number}", row)

    def _read_hf(self) -> Iterator[SourceRecord]:
        from datasets import Dataset, DatasetDict, load_from_disk

        try:
            dataset = load_from_disk(str(self.path))
        except Exception as error:
            raise InputError(self.path, None, None, f"unreadable dataset folder: {error}") from None
        if isinstance(dataset, DatasetDict):
            if len(dataset) != 1:
                raise UserError(
                    f"{self.path}: a dataset with several splits ({', '.join(dataset)}); "
                    "save the split you want to import on its own"
                )
            dataset = next(iter(dataset.values()))
        assert isinstance(dataset, Dataset)
        self.columns = list(dataset.column_names)
        self.total = len(dataset)
        for number, row in enumerate(dataset, start=1):
            yield SourceRecord(f"row {number}", row)


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def progress_bar(file: RecordFile, unit: str, progress: bool) -> tqdm:
    """A bar on a terminal only (tqdm turns `disable=None` off when stderr is not a TTY). Used
    with `with`, so an error message starts on a line of its own."""
    return tqdm(
        total=file.total,
        unit=unit,
        desc=f"import {file.path.name}",
        disable=None if progress else True,
    )


def _lift_field_size_limit() -> None:
    """csv refuses fields over 131,072 characters by default; any field that fits in memory
    imports (the same field imports from JSONL)."""
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:  # a C long narrower than sys.maxsize
            limit //= 2


def parse_column_map(items: list[str] | None) -> dict[str, str]:
    """`--map SRC=DST` options to a dict; a malformed or ambiguous one is a clear error."""
    mapping: dict[str, str] = {}
    for item in items or []:
        source, sep, target = item.partition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source or not target:
            raise UserError(f"--map {item!r}: expected SRC=DST, e.g. --map question=prompt")
        if source in mapping:
            raise UserError(f"--map {item!r}: column {source!r} is mapped twice")
        if target in mapping.values():
            raise UserError(f"--map {item!r}: two columns are mapped onto {target!r}")
        mapping[source] = target
    return mapping


def apply_column_map(
    file: RecordFile, record: SourceRecord, mapping: dict[str, str], first: bool
) -> dict[str, Any]:
    """The record with its columns renamed. Mapping onto a column that the record already has
    (and that is not itself mapped away) is an error: it would discard that column."""
    values = record.values
    if not mapping:
        return values
    if first:
        known = set(file.columns or values)
        missing = [source for source in mapping if source not in known]
        if missing:
            raise InputError(
                file.path, record.where, missing[0], "--map names a column the file lacks"
            )
    for source, target in mapping.items():
        if target in values and target not in mapping and source in values:
            raise InputError(
                file.path,
                record.where,
                target,
                f"--map {source}={target}: the file already has a column {target!r}; "
                "map or rename that one too",
            )
    return {mapping.get(key, key): value for key, value in values.items()}

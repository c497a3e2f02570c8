"""Read records from JSONL, JSON (array), CSV, Parquet or a saved Hugging Face dataset folder.

Each record comes with its location ("line 3" or "row 3"), so an error names where it is.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import InputError, UserError

SUPPORTED = ".jsonl, .jsonl.gz, .json, .csv, .parquet, or a saved Hugging Face dataset folder"


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
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise InputError(self.path, None, None, f"unreadable: {error}") from error

    def _open_text(self):
        if self.path.name.lower().endswith(".gz"):
            return gzip.open(self.path, "rt", encoding="utf-8")
        return open(self.path, encoding="utf-8", newline="")

    def _read_jsonl(self) -> Iterator[SourceRecord]:
        with self._open_text() as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as error:
                    raise InputError(
                        self.path, number, None, f"malformed JSON: {error.msg}"
                    ) from None
                if not isinstance(value, dict):
                    raise InputError(self.path, number, None, "expected a JSON object")
                yield SourceRecord(f"line {number}", value)

    def _read_json(self) -> Iterator[SourceRecord]:
        with self._open_text() as handle:
            try:
                values = json.load(handle)
            except json.JSONDecodeError as error:
                raise InputError(
                    self.path, error.lineno, None, f"malformed JSON: {error.msg}"
                ) from None
        if isinstance(values, dict) and isinstance(values.get("data"), list):
            values = values["data"]
        if not isinstance(values, list):
            raise InputError(self.path, None, None, "expected a JSON array of objects")
        self.total = len(values)
        for number, value in enumerate(values, start=1):
            if not isinstance(value, dict):
                raise InputError(self.path, f"item {number}", None, "expected a JSON object")
            yield SourceRecord(f"item {number}", value)

    def _read_csv(self) -> Iterator[SourceRecord]:
        with self._open_text() as handle:
            reader = csv.DictReader(handle)
            self.columns = list(reader.fieldnames or [])
            # Row numbers count the header as row 1, as a spreadsheet shows them.
            for number, row in enumerate(reader, start=2):
                yield SourceRecord(f"row {number}", {k: v for k, v in row.items() if k is not None})

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


def parse_column_map(items: list[str] | None) -> dict[str, str]:
    """`--map SRC=DST` options to a dict; a malformed one is a clear error."""
    mapping: dict[str, str] = {}
    for item in items or []:
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise UserError(f"--map {item!r}: expected SRC=DST, e.g. --map question=prompt")
        mapping[source.strip()] = target.strip()
    return mapping


def apply_column_map(
    file: RecordFile, record: SourceRecord, mapping: dict[str, str], first: bool
) -> dict[str, Any]:
    values = record.values
    if mapping:
        if first:
            known = set(file.columns or values)
            missing = [source for source in mapping if source not in known]
            if missing:
                raise InputError(
                    file.path, record.where, missing[0], "--map names a column the file lacks"
                )
        values = {mapping.get(key, key): value for key, value in values.items()}
    return values

"""What a value read from a file may become, checked before the database sees it.

One rule for SQLite and PostgreSQL: text columns take strings, and JSON numbers and booleans as
their JSON text (`true`, `3`, `2.5`); objects, arrays, bytes and other types are an error. NUL
characters (PostgreSQL refuses them) and lone surrogates (UTF-8 cannot encode them) are an error
in any text, metadata included, and lengths are checked against the columns in db/models/.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from datetime import date, datetime, time
from typing import Any

from db.models import HumanLabel, JudgeVersion, LabelAudit, Pair
from pipeline.errors import InputError, UserError


def _length(column: Any) -> int:
    return column.property.columns[0].type.length


EXTERNAL_ID_MAX = _length(Pair.external_id)
SOURCE_MAX = _length(Pair.source)
SYSTEM_MAX = _length(Pair.system_a)
ANNOTATOR_MAX = _length(HumanLabel.annotator)
# get_or_create_judge_version may add "@" and 8 fingerprint characters to a taken name, and the
# audit log's actor is "import:<name>".
JUDGE_NAME_MAX = min(_length(JudgeVersion.name), _length(LabelAudit.actor) - len("import:")) - 9

_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


# The first NUL or lone surrogate in a text, or None: a plain C call for the hot paths.
find_bad_char = _BAD_CHAR.search


def is_clean(text: str) -> bool:
    """No NUL and no lone surrogate: what both databases (and UTF-8) can store."""
    return _BAD_CHAR.search(text) is None


def check_chars(path: object, where: str | None, column: str | None, text: str) -> str:
    """`text` unchanged, or an error naming the first NUL or lone surrogate in it."""
    found = _BAD_CHAR.search(text)
    if found:
        char = found.group()
        what = (
            "a NUL character"
            if char == "\x00"
            else f"a lone surrogate (U+{ord(char):04X}, e.g. cut-off model output)"
        )
        raise InputError(path, where, column, f"contains {what} at character {found.start() + 1}")
    return text


def check_length(path: object, where: str | None, column: str | None, text: str, limit: int):
    if len(text) > limit:
        raise InputError(
            path, where, column, f"is {len(text):,} characters long; the limit is {limit}"
        )


def check_option(option: str, value: str, limit: int) -> str:
    """A name given on the command line (--source, --judge): not empty, no NUL, not too long."""
    if not value.strip():
        raise UserError(f"{option}: is empty")
    if _BAD_CHAR.search(value):
        raise UserError(f"{option}: contains a NUL character or a lone surrogate")
    if len(value) > limit:
        raise UserError(f"{option}: is {len(value):,} characters long; the limit is {limit}")
    return value


def describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list | tuple):
        return "a JSON array"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, str):
        return "text"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, numbers.Number):
        return "a number"
    return f"a value of type {type(value).__name__}"


def scalar_text(value: Any) -> str | None:
    """A JSON number or boolean as JSON writes it; None for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, float) and math.isfinite(value):
        return json.dumps(value)
    return None


def cell_text(path: object, where: str, column: str, value: Any) -> tuple[str | None, bool]:
    """(text, converted): the text of a cell, or None when it is missing (None, or NaN as pandas
    writes a missing value); converted is True for a number or boolean stored as JSON text."""
    if type(value) is str:  # the common case first
        return check_chars(path, where, column, value), False
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, False
    if isinstance(value, str):
        return check_chars(path, where, column, str(value)), False
    text = scalar_text(value)
    if text is None:
        if isinstance(value, float):
            raise InputError(path, where, column, f"{value} is not a finite number")
        raise InputError(path, where, column, f"is {describe(value)}, not text")
    return text, True


def metadata(path: object, where: str, extra: dict[str, Any], meta: dict[str, Any]) -> dict:
    """Extra columns and the metadata object as one plain-JSON dict; an error names the column.

    Flat metadata is checked value by value; nested metadata by one C-speed json.dumps, which
    fails on anything that is not plain JSON and shows NUL or a lone surrogate in its output;
    only then is the value walked in Python to name the problem."""
    merged = {**extra, **meta} if extra else meta
    if _plain_and_flat(merged):
        return merged
    try:
        text = json.dumps(merged, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        text = "\\u0000"  # take the slow path
    if "\\u0000" not in text and not _BAD_CHAR.search(text):
        return merged
    try:
        extra = {
            check_chars(path, where, key, key): json_value(path, where, key, value)
            for key, value in extra.items()
        }
        return {**extra, **json_value(path, where, "metadata", meta)}
    except RecursionError:
        raise InputError(path, where, "metadata", "is nested too deeply") from None


def _plain_and_flat(values: dict[str, Any]) -> bool:
    """True for the usual metadata (a few plain values): checked without serialising."""
    for key, value in values.items():
        kind = type(value)
        if type(key) is not str or not is_clean(key):
            return False
        if kind is str:
            if not is_clean(value):
                return False
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif kind is not int and kind is not bool and value is not None:
            return False
    return True


def json_value(path: object, where: str, column: str, value: Any) -> Any:
    """`value` as plain JSON (for the metadata column), or an error naming the column."""
    if type(value) is str:
        return check_chars(path, where, column, value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None  # pandas' missing value
        if math.isinf(value):
            raise InputError(path, where, column, f"{value} is not a finite number")
        return value
    if isinstance(value, str):
        return check_chars(path, where, column, str(value))
    if isinstance(value, dict):
        return {
            _key(path, where, column, key): json_value(path, where, column, item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [json_value(path, where, column, item) for item in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise InputError(path, where, column, f"is {describe(value)}, which JSON cannot hold")


def _key(path: object, where: str, column: str, key: Any) -> str:
    if type(key) is str:
        return check_chars(path, where, column, key)
    text = scalar_text(key)
    if text is None:
        raise InputError(path, where, column, f"has a key that is {describe(key)}")
    return text

"""Parse JSON from a file so that every failure is one InputError naming line and column.

Python's json raises ValueError for an integer over 4,300 digits and RecursionError for deep
nesting, and accepts NaN/Infinity, which are not JSON; here each is an error that names the
top-level key (the file's column) where it happened.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pipeline.errors import InputError


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


class _Raw(str):
    """A number or constant kept as its text, only to find where a bad one is."""


_LENIENT = json.JSONDecoder(parse_int=_Raw, parse_constant=_Raw)


def parse_json(
    path: object, where: int | str | None, text: str, *, start: int = 0, partial: bool = False
) -> Any:
    """`text` (from `start`) as JSON; with `partial`, (value, end index) of the first value.

    `where` is the line number of a JSONL line, an array item's "item N (line L)", or None for a
    whole document (an error then names the line in it)."""
    try:
        return _DECODER.raw_decode(text, start) if partial else _DECODER.decode(text)
    except json.JSONDecodeError as error:
        # A JSONL line is its own document; otherwise the error's line is the file's line.
        line = where if isinstance(where, int) else error.lineno
        raise InputError(
            path, line, None, f"malformed JSON at column {error.colno}: {error.msg}"
        ) from None
    except ValueError as error:  # a too-long integer, or NaN/Infinity
        column, problem = _bad_number(text, start)
        raise InputError(path, where or _line(text, start), column, problem or str(error)) from None
    except RecursionError:
        limit = sys.getrecursionlimit()
        problem = f"is nested too deeply (Python's JSON reader stops near {limit} levels)"
        raise InputError(
            path, where or _line(text, start), _deepest_key(text, start), problem
        ) from None


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _bad_number(text: str, start: int) -> tuple[str | None, str | None]:
    """(top-level key, problem) of the first too-long integer or NaN/Infinity in the value."""
    while start < len(text) and text[start] in " \t\r\n":
        start += 1
    try:
        value, _ = _LENIENT.raw_decode(text, start)
    except (ValueError, RecursionError):
        return None, None
    items = value.items() if isinstance(value, dict) else [(None, value)]
    for key, item in items:
        raw = _find_bad(item)
        if raw is None:
            continue
        if not raw.lstrip("-").isdigit():
            return key, f"{raw} is not valid JSON"
        limit = sys.get_int_max_str_digits()
        digits = len(raw.lstrip("-"))
        return key, f"a number with {digits} digits; Python reads at most {limit} (quote it)"
    return None, None


def _find_bad(value: Any) -> str | None:
    if isinstance(value, _Raw):
        bad = not value.lstrip("-").isdigit() or len(value) > sys.get_int_max_str_digits()
        return value if bad else None
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict | list):
        for child in children:
            if (found := _find_bad(child)) is not None:
                return found
    return None


def _deepest_key(text: str, start: int) -> str | None:
    """The top-level key whose value nests deepest: a plain scan, since parsing recursed out."""
    depth, deepest, in_string, escape = 0, 0, False, False
    string_start, last_string, key, found = start, "", None, None
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escape:
                escape = False
            elif char == "\\":
                escape = True
            elif char == '"':
                in_string = False
                last_string = text[string_start : index + 1]
        elif char == '"':
            in_string, string_start = True, index
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, found = depth, key
        elif char in "]}":
            depth -= 1
            if depth <= 0:
                break
        elif char == ":" and depth == 1:
            key = last_string
    try:
        return json.loads(found) if found else None
    except ValueError:
        return None

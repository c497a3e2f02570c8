"""Filters, sorts and text scores over a compact projection of Argilla records: the Python
half of sql_search_engine.py (which loads the rows from SQL). Runs inside the argilla-server
virtualenv, imported as a top-level module beside it (launch.py puts this folder on sys.path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from argilla_server.enums import SortOrder
from argilla_server.search_engine import (
    AndFilter,
    MetadataFilterScope,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SuggestionFilterScope,
    TermsFilter,
    TextQuery,
)


@dataclass
class RecordRow:
    """What a filter or a sort may look at, for one record."""

    id: UUID
    external_id: str | None
    status: str
    inserted_at: Any
    updated_at: Any
    metadata: dict
    fields: dict
    suggestions: dict[str, dict] = field(default_factory=dict)  # question -> value/score/agent/type
    responses: list[dict] = field(default_factory=list)  # user_id, status, values

    def record_property(self, name: str) -> Any:
        value = getattr(self, name, None)
        return str(value) if isinstance(value, UUID) else value


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _in_range(value: Any, ge: Any, le: Any) -> bool:
    if value is None or isinstance(value, (list, dict, bool)):
        return False

    def coerce(bound: Any) -> Any:
        # The API sends dates as ISO strings and numbers as floats (or numeric strings).
        if isinstance(bound, str) and isinstance(value, datetime):
            return datetime.fromisoformat(bound.replace("Z", "+00:00")).replace(tzinfo=None)
        if isinstance(bound, str) and isinstance(value, (int, float)):
            return float(bound)
        return bound

    try:
        low, high = coerce(ge), coerce(le)
        return (low is None or value >= low) and (high is None or value <= high)
    except (TypeError, ValueError):
        return False


def _responses_for(row: RecordRow, scope: ResponseFilterScope) -> list[dict]:
    if scope.user is None:
        return row.responses
    return [r for r in row.responses if r["user_id"] == scope.user.id]


def matches(row: RecordRow, flt: Any) -> bool:
    if isinstance(flt, AndFilter):
        return all(matches(row, inner) for inner in flt.filters)
    scope = flt.scope
    if isinstance(scope, ResponseFilterScope):
        responses = _responses_for(row, scope)
        if scope.question is None:  # response status, where "pending" means "no response"
            statuses = {str(v) for v in flt.values}
            if "pending" in statuses and not responses:
                return True
            return any(str(r["status"]) in statuses for r in responses)
        values = [
            r["values"].get(scope.question, {}).get("value")
            for r in responses
            if scope.question in r["values"]
        ]
    elif isinstance(scope, MetadataFilterScope):
        values = [row.metadata.get(scope.metadata_property)]
    elif isinstance(scope, SuggestionFilterScope):
        values = [row.suggestions.get(scope.question, {}).get(scope.property)]
    elif isinstance(scope, RecordFilterScope):
        values = [row.record_property(scope.property)]
    else:
        raise ValueError(f"cannot filter on {scope}")
    if isinstance(flt, TermsFilter):
        wanted = {str(v) for v in flt.values}
        return any(str(item) in wanted for v in values for item in as_list(v) if item is not None)
    if isinstance(flt, RangeFilter):
        return any(_in_range(v, flt.ge, flt.le) for v in values)
    raise ValueError(f"cannot apply filter {flt}")


def _sort_value(row: RecordRow, scope: Any) -> Any:
    if isinstance(scope, MetadataFilterScope):
        return row.metadata.get(scope.metadata_property)
    if isinstance(scope, SuggestionFilterScope):
        return row.suggestions.get(scope.question, {}).get(scope.property)
    if isinstance(scope, RecordFilterScope):
        return row.record_property(scope.property)
    if isinstance(scope, ResponseFilterScope):
        responses = _responses_for(row, scope)
        if scope.question:
            values = [r["values"].get(scope.question, {}).get("value") for r in responses]
        else:
            values = [r.get(scope.property) for r in responses]
        values = [v for v in values if isinstance(v, (int, float))]
        return sum(values) / len(values) if values else None
    return None


def sorted_rows(rows: list[RecordRow], sort: list) -> list[RecordRow]:
    # Stable sorts from the last key to the first; missing values go last, as in Elasticsearch.
    for order in reversed(sort):
        present = [r for r in rows if _sort_value(r, order.scope) is not None]
        missing = [r for r in rows if _sort_value(r, order.scope) is None]
        present.sort(
            key=lambda r, s=order.scope: _sortable(_sort_value(r, s)),
            reverse=order.order == SortOrder.desc,
        )
        rows = present + missing
    return rows


def _sortable(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def text_score(row: RecordRow, query: TextQuery | str | None) -> float | None:
    if query is None:
        return 1.0
    if isinstance(query, str):
        query = TextQuery(q=query)
    texts = [row.fields.get(query.field)] if query.field else list(row.fields.values())
    terms = [t for t in query.q.lower().split() if t]
    haystack = " ".join(str(t) for t in texts if t is not None).lower()
    hits = sum(haystack.count(term) for term in terms)
    return float(hits) if hits else None


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0

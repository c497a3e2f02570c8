"""A search engine for argilla-server that answers from the server's own SQL tables.

Runs INSIDE the argilla-server virtualenv (it imports argilla_server), never in the workbench's.
argilla-server 2.8 keeps records, responses and suggestions in SQL and mirrors them into
Elasticsearch only to search, count progress and aggregate metadata. Elasticsearch cannot run
on a laptop without Docker, so for the local server (tests, demo) this engine computes those
answers from SQL instead. The index-maintenance hooks are no-ops: SQL is already the truth.

Filters, sorting and text search are evaluated in Python (record_filters.py) over a compact
projection of the dataset's records. That is linear in the dataset size: fine for local work,
and the reason production uses Elasticsearch (docker-compose.yml).
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

from argilla_server.database import AsyncSessionLocal
from argilla_server.enums import MetadataPropertyType, SimilarityOrder
from argilla_server.models import (
    Dataset,
    MetadataProperty,
    Question,
    Record,
    Response,
    Suggestion,
    User,
    Vector,
    VectorSettings,
)
from argilla_server.search_engine import (
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    TermsMetrics,
    TextQuery,
)
from record_filters import RecordRow, as_list, cosine, matches, sorted_rows, text_score
from sqlalchemy import func, select

ENGINE_NAME = "rlaif-sql"


class SQLSearchEngine(SearchEngine):
    @classmethod
    async def new_instance(cls) -> SQLSearchEngine:
        return cls()

    async def close(self) -> None:
        pass

    async def ping(self) -> bool:
        return True

    async def info(self) -> dict:
        return {"distribution": ENGINE_NAME, "version": "1"}

    # SQL is the source of truth; there is no separate index to maintain.
    async def create_index(self, dataset: Dataset) -> None:
        pass

    async def delete_index(self, dataset: Dataset) -> None:
        pass

    async def configure_metadata_property(self, dataset, metadata_property) -> None:
        pass

    async def configure_index_vectors(self, vector_settings) -> None:
        pass

    async def index_records(self, dataset, records) -> None:
        pass

    async def partial_record_update(self, record, **update) -> None:
        pass

    async def delete_records(self, dataset, records) -> None:
        pass

    async def update_record_response(self, response) -> None:
        pass

    async def delete_record_response(self, response) -> None:
        pass

    async def update_record_suggestion(self, suggestion) -> None:
        pass

    async def delete_record_suggestion(self, suggestion) -> None:
        pass

    async def _rows(self, dataset_id: UUID, with_fields: bool) -> list[RecordRow]:
        async with AsyncSessionLocal() as db:
            columns = [
                Record.id,
                Record.external_id,
                Record.status,
                Record.inserted_at,
                Record.updated_at,
                Record.metadata_,
            ]
            if with_fields:
                columns.append(Record.fields)
            result = await db.execute(
                select(*columns)
                .where(Record.dataset_id == dataset_id)
                .order_by(Record.inserted_at, Record.id)
            )
            rows = {
                r[0]: RecordRow(
                    id=r[0],
                    external_id=r[1],
                    status=str(r[2]),
                    inserted_at=r[3],
                    updated_at=r[4],
                    metadata=r[5] or {},
                    fields=(r[6] or {}) if with_fields else {},
                )
                for r in result.all()
            }
            suggestions = await db.execute(
                select(
                    Suggestion.record_id,
                    Question.name,
                    Suggestion.value,
                    Suggestion.score,
                    Suggestion.agent,
                    Suggestion.type,
                )
                .join(Question, Question.id == Suggestion.question_id)
                .join(Record, Record.id == Suggestion.record_id)
                .where(Record.dataset_id == dataset_id)
            )
            for record_id, question, value, score, agent, kind in suggestions.all():
                rows[record_id].suggestions[question] = {
                    "value": value,
                    "score": score,
                    "agent": agent,
                    "type": str(kind) if kind else None,
                }
            responses = await db.execute(
                select(Response.record_id, Response.user_id, Response.status, Response.values)
                .join(Record, Record.id == Response.record_id)
                .where(Record.dataset_id == dataset_id)
            )
            for record_id, user_id, status, values in responses.all():
                rows[record_id].responses.append(
                    {"user_id": user_id, "status": str(status), "values": values or {}}
                )
        return list(rows.values())

    async def search(
        self,
        dataset: Dataset,
        query: TextQuery | str | None = None,
        filter: Any = None,
        sort: list | None = None,
        offset: int = 0,
        limit: int = 100,
        user_id: str | None = None,
    ) -> SearchResponses:
        if query is None and filter is None and not sort:
            return await self._page_without_conditions(dataset.id, offset, limit)
        scored = []
        for row in await self._rows(dataset.id, with_fields=query is not None):
            score = text_score(row, query)
            if score is not None and (filter is None or matches(row, filter)):
                scored.append((row, score))
        if sort:
            order = {id(r): i for i, r in enumerate(sorted_rows([r for r, _ in scored], sort))}
            scored.sort(key=lambda pair: order[id(pair[0])])
        elif query is not None:
            scored.sort(key=lambda pair: -pair[1])
        page = scored[offset : offset + limit]
        return SearchResponses(
            items=[SearchResponseItem(record_id=r.id, score=s) for r, s in page], total=len(scored)
        )

    async def _page_without_conditions(
        self, dataset_id: UUID, offset: int, limit: int
    ) -> SearchResponses:
        # The common case (list every record) stays one indexed SQL query per page.
        async with AsyncSessionLocal() as db:
            total = await db.scalar(
                select(func.count(Record.id)).where(Record.dataset_id == dataset_id)
            )
            ids = await db.scalars(
                select(Record.id)
                .where(Record.dataset_id == dataset_id)
                .order_by(Record.inserted_at, Record.id)
                .offset(offset)
                .limit(limit)
            )
            items = [SearchResponseItem(record_id=i, score=1.0) for i in ids.all()]
        return SearchResponses(items=items, total=total or 0)

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: list[float] | None = None,
        record: Record | None = None,
        query: TextQuery | str | None = None,
        filter: Any = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: float | None = None,
    ) -> SearchResponses:
        if bool(value) == bool(record):
            raise ValueError("Must provide either vector value or record to compute the search")
        target = value or record.vector_value_by_vector_settings(vector_settings)
        async with AsyncSessionLocal() as db:
            vectors = dict(
                (
                    await db.execute(
                        select(Vector.record_id, Vector.value).where(
                            Vector.vector_settings_id == vector_settings.id
                        )
                    )
                ).all()
            )
        allowed = None
        if filter is not None or query is not None:
            rows = await self._rows(dataset.id, with_fields=query is not None)
            allowed = {
                r.id
                for r in rows
                if text_score(r, query) is not None and (filter is None or matches(r, filter))
            }
        scored = []
        for record_id, vector in vectors.items():
            if (record is not None and record_id == record.id) or (
                allowed is not None and record_id not in allowed
            ):
                continue
            similarity = cosine(target, vector)
            if threshold is None or similarity >= threshold:
                scored.append((record_id, similarity))
        scored.sort(key=lambda p: p[1], reverse=order == SimilarityOrder.most_similar)
        scored = scored[:max_results]
        return SearchResponses(
            items=[SearchResponseItem(record_id=i, score=s) for i, s in scored], total=len(scored)
        )

    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        if dataset.is_draft:
            return {}
        async with AsyncSessionLocal() as db:
            counts = (
                await db.execute(
                    select(Record.status, func.count())
                    .where(Record.dataset_id == dataset.id)
                    .group_by(Record.status)
                )
            ).all()
        by_status = {str(status): n for status, n in counts}
        return {"total": sum(by_status.values()), **by_status}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        if dataset.is_draft:
            return {}
        async with AsyncSessionLocal() as db:
            counts = (
                await db.execute(
                    select(Response.status, func.count())
                    .join(Record, Record.id == Response.record_id)
                    .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
                    .group_by(Response.status)
                )
            ).all()
        by_status = {str(status): n for status, n in counts}
        return {"total": sum(by_status.values()), **by_status}

    async def compute_metrics_for(self, metadata_property: MetadataProperty):
        async with AsyncSessionLocal() as db:
            metadata = (
                await db.scalars(
                    select(Record.metadata_).where(
                        Record.dataset_id == metadata_property.dataset_id
                    )
                )
            ).all()
        values = [
            (m or {}).get(metadata_property.name)
            for m in metadata
            if (m or {}).get(metadata_property.name) is not None
        ]
        if metadata_property.type == MetadataPropertyType.terms:
            counts: Counter = Counter(str(v) for value in values for v in as_list(value))
            return TermsMetrics(
                total=sum(counts.values()),
                values=[TermsMetrics.TermCount(term=t, count=n) for t, n in counts.most_common()],
            )
        numbers = [v for v in values if isinstance(v, (int, float))]
        metrics_class = (
            IntegerMetadataMetrics
            if metadata_property.type == MetadataPropertyType.integer
            else FloatMetadataMetrics
        )
        return metrics_class(min=min(numbers, default=None), max=max(numbers, default=None))


def register() -> None:
    SearchEngine.register(engine_name=ENGINE_NAME)(SQLSearchEngine)


register()

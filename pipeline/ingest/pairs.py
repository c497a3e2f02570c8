"""`rlaif import pairs`: one file, one transaction; a re-run is idempotent.

Rows are written in chunks with bulk Core statements (prompts and responses deduplicated by
content hash), which is what makes 100 k pairs a matter of seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from db.label_rows import HumanLabelRow
from db.labels import upsert_human_labels
from db.models import Pair, Prompt, Response, system_ids
from db.pair_state import refresh_pair_state
from db.upsert import chunked
from pipeline.errors import InputError
from pipeline.ingest.readers import RecordFile, apply_column_map, batches, progress_bar
from pipeline.ingest.records import PairRecord, canonical_pair, chosen_rejected_pair, sha256
from pipeline.ingest.values import SOURCE_MAX, check_option

CHUNK = 2000
DATASET_ANNOTATOR = "dataset"


@dataclass
class ImportStats:
    read: int = 0
    inserted: int = 0
    unchanged: int = 0
    human_labels: int = 0
    empty_responses: int = 0  # pairs with at least one empty response
    json_text_values: int = 0  # numbers/booleans in text columns, stored as their JSON text

    def summary(self) -> str:
        text = f"{self.read} pairs read: {self.inserted} new, {self.unchanged} already present"
        if self.human_labels:
            text += f"; {self.human_labels} human labels from the dataset"
        if self.empty_responses:
            text += f"; {_count(self.empty_responses, 'pair has', 'pairs have')} an empty response"
        if self.json_text_values:
            text += "; " + _count(
                self.json_text_values,
                "number or boolean in a text column was stored as its JSON text",
                "numbers or booleans in text columns were stored as their JSON text",
            )
        return text


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def import_pairs(
    session: Session,
    path: str | Path,
    *,
    source: str | None = None,
    column_map: dict[str, str] | None = None,
    chosen_rejected: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> ImportStats:
    """Read a file of pairs into the database. Raises InputError (naming file, line and column)
    before the caller commits, so bad input writes nothing."""
    file = RecordFile(path)
    option = "--source" if source else "--source (by default the file name)"
    source = check_option(option, source or file.path.name.split(".")[0], SOURCE_MAX)
    stats = ImportStats()
    records = _read_pairs(file, column_map or {}, chosen_rejected, seed, stats)
    with progress_bar(file, "pair", progress) as bar:
        for batch in batches(records, CHUNK):
            _write_chunk(session, file.path, batch, source, stats)
            bar.update(len(batch))
    return stats


def _read_pairs(
    file: RecordFile, column_map: dict[str, str], chosen_rejected: bool, seed: int, stats
) -> Iterator[PairRecord]:
    """The file's pairs, validated; a repeated id with the same content is read once."""
    seen: dict[str, tuple[str, str]] = {}  # external id -> (content hash, where), within the file
    for index, raw in enumerate(file):
        values = apply_column_map(file, raw, column_map, first=index == 0)
        if chosen_rejected:
            record = chosen_rejected_pair(file.path, raw.where, values, seed)
        else:
            record = canonical_pair(file.path, raw.where, values)
        content = record.content_hash
        if record.external_id in seen:
            if seen[record.external_id][0] != content:
                raise InputError(
                    file.path,
                    raw.where,
                    "id",
                    f"id {record.external_id!r} already used with other content "
                    f"at {seen[record.external_id][1]}",
                )
            continue
        seen[record.external_id] = (content, raw.where)
        stats.read += 1
        stats.empty_responses += record.has_empty_response
        stats.json_text_values += record.json_text_values
        yield record


def _write_chunk(
    session: Session, path: Path, records: list[PairRecord], source: str, stats: ImportStats
) -> None:
    existing = dict(
        session.execute(
            select(Pair.external_id, Pair.content_hash).where(
                Pair.external_id.in_([r.external_id for r in records])
            )
        ).all()
    )
    new_records = []
    for record in records:
        if record.external_id not in existing:
            new_records.append(record)
        elif existing[record.external_id] == record.content_hash:
            stats.unchanged += 1
        else:
            raise InputError(
                path,
                record.where,
                "id",
                f"id {record.external_id!r} is already in the database with other content",
            )

    # Each text hashed once: (prompt, response_a, response_b) hashes per new record.
    hashes = [(sha256(r.prompt), sha256(r.response_a), sha256(r.response_b)) for r in new_records]
    prompt_ids = _ensure_prompts(
        session, {h[0]: r.prompt for r, h in zip(new_records, hashes, strict=True)}
    )
    wanted = {}
    for record, (prompt_hash, a_hash, b_hash) in zip(new_records, hashes, strict=True):
        prompt_id = prompt_ids[prompt_hash]
        wanted[(prompt_id, a_hash)] = record.response_a
        wanted[(prompt_id, b_hash)] = record.response_b
    response_ids = _ensure_responses(session, wanted)
    names = {r.system_a for r in new_records} | {r.system_b for r in new_records}
    systems = system_ids(session.connection(), names - {None})

    rows = []
    for record, (prompt_hash, a_hash, b_hash) in zip(new_records, hashes, strict=True):
        prompt_id = prompt_ids[prompt_hash]
        rows.append(
            {
                "external_id": record.external_id,
                "prompt_id": prompt_id,
                "response_a_id": response_ids[(prompt_id, a_hash)],
                "response_b_id": response_ids[(prompt_id, b_hash)],
                "source": source,
                "system_a": record.system_a,
                "system_b": record.system_b,
                "system_a_id": systems.get(record.system_a),
                "system_b_id": systems.get(record.system_b),
                # Characters, as Response.text_length counts them.
                "length_diff": len(record.response_a) - len(record.response_b),
                "metadata": record.meta,
                "content_hash": record.content_hash,
            }
        )
    if rows:
        session.execute(insert(Pair.__table__), rows)
    stats.inserted += len(rows)
    _record_known_preferences(session, records, stats)


def _ensure_prompts(session: Session, texts_by_hash: dict[str, str]) -> dict[str, int]:
    found: dict[str, int] = {}
    hashes = list(texts_by_hash)
    for part in chunked(hashes, 900):
        found.update(
            session.execute(select(Prompt.text_hash, Prompt.id).where(Prompt.text_hash.in_(part)))
            .tuples()
            .all()
        )
    missing = [{"text": texts_by_hash[h], "text_hash": h} for h in hashes if h not in found]
    if missing:
        result = session.execute(
            # Core (not ORM) insert: insertmanyvalues batches the rows into few statements.
            insert(Prompt.__table__).returning(
                Prompt.__table__.c.text_hash, Prompt.__table__.c.id, sort_by_parameter_order=True
            ),
            missing,
        )
        found.update(result.tuples().all())
    return found


def _ensure_responses(
    session: Session, texts_by_key: dict[tuple[int, str], str]
) -> dict[tuple[int, str], int]:
    found: dict[tuple[int, str], int] = {}
    keys = list(texts_by_key)
    prompt_ids = sorted({prompt_id for prompt_id, _ in keys})
    for part in chunked(prompt_ids, 900):
        rows = session.execute(
            select(Response.prompt_id, Response.text_hash, Response.id).where(
                Response.prompt_id.in_(part)
            )
        )
        found.update({(p, h): i for p, h, i in rows if (p, h) in texts_by_key})
    missing = [
        {"prompt_id": p, "text_hash": h, "text": texts_by_key[(p, h)]}
        for p, h in keys
        if (p, h) not in found
    ]
    if missing:
        result = session.execute(
            insert(table := Response.__table__).returning(
                table.c.prompt_id, table.c.text_hash, table.c.id, sort_by_parameter_order=True
            ),
            missing,
        )
        found.update({(p, h): i for p, h, i in result})
    return found


def _record_known_preferences(
    session: Session, records: list[PairRecord], stats: ImportStats
) -> None:
    """chosen/rejected data: the known preference becomes a human label from `dataset`."""
    preferred = [r for r in records if r.preferred]
    if not preferred:
        return
    ids = dict(
        session.execute(
            select(Pair.external_id, Pair.id).where(
                Pair.external_id.in_([r.external_id for r in preferred])
            )
        ).all()
    )
    stats.human_labels += upsert_human_labels(
        session,
        [
            HumanLabelRow(ids[record.external_id], DATASET_ANNOTATOR, record.preferred)
            for record in preferred
        ],
        source="import",
        reason="known preference in the imported dataset",
    )
    refresh_pair_state(session, ids.values())

"""Merge human and AI labels into a training snapshot (TRL preference format).

Rule: a reviewer's override beats everything; a human consensus (strict majority) beats any AI
label; an AI label is used only when it is valid, swap-consistent, at or above `min_confidence`,
and no two judge versions disagree on the pair. Ties, and pairs whose human labels are split,
are left out. Every export is a Snapshot row listing the labels it used.

A snapshot is immutable: each export writes a folder of its own (an existing non-empty folder is
refused), and the row keeps the folder's absolute path and a hash of its files, which
pipeline.train.common.snapshot_folder checks whenever a snapshot is loaded.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from db.enums import JudgmentStatus
from db.models import (
    HumanLabel,
    JudgeVersion,
    Judgment,
    Pair,
    Prompt,
    Response,
    Snapshot,
    SnapshotItem,
)
from db.session import rlaif_home
from db.upsert import chunked
from pipeline.errors import UserError

COLUMNS = ("prompt", "chosen", "rejected", "margin", "p_chosen", "pair_id", "label_source")
MANIFEST = "snapshot.json"  # written last; not part of the content hash (it holds the hash)


@dataclass(frozen=True)
class MergeRule:
    min_confidence: float = 0.8
    judge: str | None = None  # restrict AI labels to one judge version (by name)


def _human_rows(session: Session):
    reference = func.coalesce(Pair.override_label, Pair.human_consensus)
    agreeing = (
        select(func.count())
        .where(HumanLabel.pair_id == Pair.id, HumanLabel.label == reference)
        .scalar_subquery()
    )
    return session.execute(
        select(
            Pair.id, reference, Pair.override_label.is_not(None), agreeing, Pair.human_label_count
        )
        .where(reference.in_(("A", "B")))
        .order_by(Pair.id)
    ).all()


def _ai_rows(session: Session, rule: MergeRule):
    query = (
        select(
            Judgment.pair_id, Judgment.id, Judgment.label, Judgment.confidence, JudgeVersion.name
        )
        .join(Pair, Pair.id == Judgment.pair_id)
        .join(JudgeVersion, JudgeVersion.id == Judgment.judge_version_id)
        .where(
            Pair.human_label_count == 0,
            Pair.override_label.is_(None),
            Pair.judge_disagreement.is_(False),
            Judgment.status == JudgmentStatus.OK,
            Judgment.label.in_(("A", "B")),
            or_(Judgment.swap_inconsistent.is_(False), Judgment.swap_inconsistent.is_(None)),
            Judgment.confidence >= rule.min_confidence,
        )
        .order_by(Judgment.pair_id, Judgment.confidence.desc())
    )
    if rule.judge:
        query = query.where(JudgeVersion.name == rule.judge)
    best = {}
    for row in session.execute(query):
        best.setdefault(row.pair_id, row)  # highest confidence first
    return list(best.values())


def _texts(session: Session, pair_ids: list[int]) -> dict[int, tuple[str, str, str, str]]:
    response_a, response_b = aliased(Response), aliased(Response)
    texts = {}
    for part in chunked(pair_ids, 900):
        rows = session.execute(
            select(Pair.id, Pair.external_id, Prompt.text, response_a.text, response_b.text)
            .join(Prompt, Prompt.id == Pair.prompt_id)
            .join(response_a, response_a.id == Pair.response_a_id)
            .join(response_b, response_b.id == Pair.response_b_id)
            .where(Pair.id.in_(part))
        )
        texts.update({row[0]: row[1:] for row in rows})
    return texts


def create_snapshot(
    session: Session,
    *,
    out_dir: str | Path | None = None,
    min_confidence: float = 0.8,
    judge: str | None = None,
) -> Snapshot:
    """Write `preferences.jsonl` and `hf_dataset/` under out_dir and record the snapshot."""
    rule = MergeRule(min_confidence=min_confidence, judge=judge)
    snapshot_id = uuid.uuid4().hex[:12]
    out = new_snapshot_folder(out_dir, snapshot_id)
    items, judges = _merged_items(session, rule)
    records, db_items = _rows(session, items, snapshot_id)
    _write_dataset(out, records)
    n_ai = sum(1 for item in db_items if item["label_source"] == "ai")
    snapshot = Snapshot(
        id=snapshot_id,
        rule=asdict(rule),
        n_human=len(db_items) - n_ai,
        n_ai=n_ai,
        path=str(out),
        judge_versions=sorted(judges),
        content_hash=content_hash(out),
    )
    session.add(snapshot)
    session.flush()
    if db_items:
        session.execute(SnapshotItem.__table__.insert(), db_items)
    (out / MANIFEST).write_text(
        json.dumps(
            {
                "id": snapshot_id,
                "rule": asdict(rule),
                "n_human": snapshot.n_human,
                "n_ai": n_ai,
                "judge_versions": sorted(judges),
                "columns": list(COLUMNS),
                "content_hash": snapshot.content_hash,
            },
            indent=2,
        )
    )
    return snapshot


_Item = tuple[int, str, str, float, int | None]  # pair_id, label, source, p_chosen, judgment_id


def _merged_items(session: Session, rule: MergeRule) -> tuple[list[_Item], set[str]]:
    """The merge rule applied: one item per pair that goes into the snapshot, and the names of
    the judge versions whose labels are used."""
    items: list[_Item] = []
    for pair_id, label, is_override, agreeing, total in _human_rows(session):
        # Soft human label: the share of reviewers who agree with the consensus.
        p_chosen = 1.0 if is_override or not total else agreeing / total
        items.append((pair_id, label, "override" if is_override else "human", p_chosen, None))
    judges = set()
    for row in _ai_rows(session, rule):
        items.append((row.pair_id, row.label, "ai", float(row.confidence), row.id))
        judges.add(row.name)
    return items, judges


def _rows(session: Session, items: list[_Item], snapshot_id: str) -> tuple[list[dict], list[dict]]:
    """The preference records (COLUMNS) and the SnapshotItem rows of `items`."""
    texts = _texts(session, [item[0] for item in items])
    records, db_items = [], []
    for pair_id, label, source, p_chosen, judgment_id in items:
        external_id, prompt, text_a, text_b = texts[pair_id]
        chosen, rejected = (text_a, text_b) if label == "A" else (text_b, text_a)
        records.append(
            {
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "margin": round(2 * p_chosen - 1, 6),
                "p_chosen": p_chosen,
                "pair_id": external_id,
                "label_source": source,
            }
        )
        db_items.append(
            {
                "snapshot_id": snapshot_id,
                "pair_id": pair_id,
                "label_source": source,
                "label": label,
                "judgment_id": judgment_id,
                "p_chosen": p_chosen,
            }
        )
    human_ids = _human_label_ids(session, [i for i in db_items if i["label_source"] == "human"])
    for item in db_items:
        item["human_label_ids"] = human_ids.get(item["pair_id"])
    return records, db_items


def _write_dataset(out: Path, records: list[dict]) -> None:
    with open(out / "preferences.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    from datasets import Dataset

    Dataset.from_list(records).save_to_disk(str(out / "hf_dataset"))


def new_snapshot_folder(out_dir: str | Path | None, snapshot_id: str) -> Path:
    """The export's own folder, absolute: `out_dir` when it is new or empty, else an error (an
    earlier snapshot there would silently change); RLAIF_HOME/snapshots/<id> by default."""
    out = Path(out_dir).expanduser() if out_dir else rlaif_home() / "snapshots" / snapshot_id
    out = out.resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"{out}: not an empty folder; a snapshot is never overwritten, so export to a new "
            "folder (or leave the folder out: RLAIF_HOME/snapshots/<id>)"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def content_hash(folder: Path) -> str:
    """sha256 over every file's relative path and bytes, in path order (the manifest aside)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative == MANIFEST:
            continue
        digest.update(relative.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def verified_folder(snapshot: Snapshot) -> Path:
    """The snapshot's folder, after checking that its files are the ones exported."""
    if not snapshot.path:
        raise UserError(f"snapshot {snapshot.id}: no folder recorded")
    folder = Path(snapshot.path)
    if not folder.is_dir():
        raise UserError(f"snapshot {snapshot.id}: its folder {folder} no longer exists")
    check_files(folder, snapshot.content_hash, f"snapshot {snapshot.id}")
    return folder


def check_files(folder: Path, expected: str | None, name: str | None = None) -> None:
    """Raise UserError when the files in `folder` no longer hash to `expected` (the manifest's
    hash when None; nothing to check for exports older than the hash)."""
    manifest = folder / MANIFEST
    if expected is None and manifest.is_file():
        try:
            expected = json.loads(manifest.read_text()).get("content_hash")
        except (ValueError, AttributeError):
            raise UserError(f"{manifest}: not a snapshot manifest (JSON object)") from None
    if expected and content_hash(folder) != expected:
        raise UserError(
            f"{name or folder}: the files in {folder} changed after the export (content hash "
            "differs); a model trained on them would cite the wrong labels. Export again."
        )


def _human_label_ids(session: Session, items: list[dict]) -> dict[int, list[int]]:
    ids: dict[int, list[int]] = {}
    labels = {item["pair_id"]: item["label"] for item in items}
    for part in chunked(list(labels), 900):
        for pair_id, label_id, label in session.execute(
            select(HumanLabel.pair_id, HumanLabel.id, HumanLabel.label).where(
                HumanLabel.pair_id.in_(part)
            )
        ):
            if label == labels[pair_id]:
                ids.setdefault(pair_id, []).append(label_id)
    return ids

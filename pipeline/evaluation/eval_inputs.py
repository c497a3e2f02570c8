"""What a policy evaluation reads: the policy and baseline (with the policy's training lineage)
and the held-out prompts.

By default the prompts are the snapshot's prompts that the PPO run did NOT train on: the run
records the sha256 of every training prompt in its lineage.json (`train_prompt_hashes`), the
same hash as Prompt.text_hash.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from db.enums import JobStatus
from db.models import Pair, Prompt, Snapshot, SnapshotItem, TrainingJob
from db.upsert import chunked, upsert
from pipeline.errors import InputError, UserError
from pipeline.ingest.records import sha256


@dataclass(frozen=True)
class ModelRef:
    """A policy to generate with: what from_pretrained loads, and its system name on pairs."""

    path: str
    system: str
    job_id: int | None = None
    lineage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HeldOut:
    prompts: list[tuple[int, str, str]]  # (prompt id, text, text hash), in id order
    source: str  # in words: where they came from
    snapshot_id: str | None
    excluded: int  # training prompts left out


def _job_policy(session: Session, job_id: int) -> str:
    job = session.get(TrainingJob, job_id)
    if job is None or job.kind != "ppo":
        raise UserError(f"job:{job_id}: no PPO run with that id")
    policy = (job.artifacts or {}).get("policy")
    if job.status != JobStatus.SUCCEEDED or not policy:
        raise UserError(f"job:{job_id}: the PPO run is {job.status}; it saved no policy yet")
    return policy


def _job_of_folder(session: Session, path: str, lineage: dict[str, Any]) -> int | None:
    job_id = lineage.get("job_id")
    if isinstance(job_id, int) and session.get(TrainingJob, job_id) is not None:
        return job_id
    wanted = str(Path(path).resolve())
    for job in session.scalars(select(TrainingJob).where(TrainingJob.kind == "ppo")):
        saved = (job.artifacts or {}).get("policy")
        if saved and str(Path(saved).resolve()) == wanted:
            return job.id
    return None


def resolve_model_ref(session: Session, spec: str) -> ModelRef:
    """'job:ID' (a finished PPO run), or a model name (pipeline/models.py: bundled:smollm2,
    a model folder, a hub id)."""
    from pipeline.judging.backends import hf_common

    job_id = None
    if spec.startswith("job:"):
        try:
            job_id = int(spec[4:])
        except ValueError:
            raise UserError(f"{spec}: expected job:<number>") from None
        spec = _job_policy(session, job_id)
    loadable, model_id, revision = hf_common.resolve_model(spec)
    system = f"{model_id}@{revision}" if revision else model_id
    lineage_path = Path(loadable) / "lineage.json"
    lineage = json.loads(lineage_path.read_text()) if lineage_path.is_file() else {}
    if job_id is None and lineage:
        job_id = _job_of_folder(session, loadable, lineage)
    return ModelRef(loadable, system, job_id, lineage)


def read_prompts_file(path: str | Path) -> list[str]:
    """One prompt per line; a .jsonl file holds objects with a "prompt" field."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: prompts file not found")
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if path.suffix != ".jsonl":
            prompts.append(line.strip())
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            problem = f"malformed JSON at column {error.colno}: {error.msg}"
            raise InputError(path, number, None, problem) from None
        text = value.get("prompt") if isinstance(value, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise InputError(path, number, "prompt", "expected a non-empty text")
        prompts.append(text)
    if not prompts:
        raise UserError(f"{path}: no prompts in the file")
    return prompts


def ensure_prompts(session: Session, texts: list[str]) -> list[tuple[int, str, str]]:
    """Prompt rows for these texts (created when new), in the given order, duplicates once."""
    by_hash = {sha256(t): t for t in texts}
    upsert(
        session,
        Prompt.__table__,
        [{"text": t, "text_hash": h} for h, t in by_hash.items()],
        keys=("text_hash",),
    )
    ids: dict[str, int] = {}
    for batch in chunked(list(by_hash)):
        query = select(Prompt.text_hash, Prompt.id).where(Prompt.text_hash.in_(batch))
        ids.update({h: i for h, i in session.execute(query)})
    return [(ids[h], t, h) for h, t in by_hash.items()]


def _snapshot_prompts(session: Session, snapshot: dict[str, Any]) -> tuple[list, str | None]:
    snapshot_id = snapshot.get("id")
    if snapshot_id and session.get(Snapshot, snapshot_id) is not None:
        query = (
            select(Prompt.id, Prompt.text, Prompt.text_hash)
            .join(Pair, Pair.prompt_id == Prompt.id)
            .join(SnapshotItem, SnapshotItem.pair_id == Pair.id)
            .where(SnapshotItem.snapshot_id == snapshot_id)
            .distinct()
        )
        return [tuple(row) for row in session.execute(query)], snapshot_id
    if not snapshot.get("path"):
        raise UserError("the policy's lineage names no snapshot: pass --prompts or --prompts-file")
    from pipeline.train.common import load_snapshot

    dataset, _ = load_snapshot(snapshot["path"])
    return ensure_prompts(session, list(dataset["prompt"])), None


def held_out_prompts(
    session: Session,
    policy: ModelRef,
    *,
    n: int,
    seed: int,
    source: str | None = None,
    prompts_file: str | Path | None = None,
) -> HeldOut:
    """Up to `n` prompts (a seeded draw when there are more), never one the policy trained on."""
    snapshot_id = None
    if prompts_file is not None:
        rows, where = ensure_prompts(session, read_prompts_file(prompts_file)), str(prompts_file)
    elif source is not None:
        query = select(Prompt.id, Prompt.text, Prompt.text_hash).where(
            exists().where(Pair.prompt_id == Prompt.id, Pair.source == source)
        )
        rows, where = [tuple(r) for r in session.execute(query)], f"pairs of source {source!r}"
    elif policy.lineage.get("snapshot"):
        if "train_prompt_hashes" not in policy.lineage:
            raise UserError(
                f"{policy.path}: the run recorded no training prompts (trained before this "
                "was recorded); pass --prompts or --prompts-file"
            )
        rows, snapshot_id = _snapshot_prompts(session, policy.lineage["snapshot"])
        where = f"snapshot {snapshot_id or policy.lineage['snapshot'].get('path')}, held out"
    else:
        raise UserError(f"{policy.path}: no training lineage; pass --prompts or --prompts-file")
    trained = set(policy.lineage.get("train_prompt_hashes") or ())
    kept = sorted((r for r in rows if r[2] not in trained), key=lambda r: r[0])
    excluded = len(rows) - len(kept)
    if not kept:
        raise UserError(f"no held-out prompts in {where}: every one was used in training")
    if len(kept) > n:
        kept = sorted(random.Random(seed).sample(kept, n), key=lambda r: r[0])
    return HeldOut(kept, where, snapshot_id, excluded)

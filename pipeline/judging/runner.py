"""pairs -> judge -> database: resumable, idempotent, chunked labelling.

Each chunk of pairs is judged, then written with db.labels.upsert_judgments and committed in its own
transaction (chunk_loop.judge_in_chunks, the loop harmless_runner.py uses too). A run killed at any
moment (even SIGKILL) loses at most the chunk in flight, which was never committed; the next run
selects exactly the pairs this judge version has no ok/invalid judgment for (failed ones are
retried), and the (pair, judge version) unique key makes a duplicate impossible.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from db.enums import SETTLED_JUDGMENT_STATUSES, JudgmentStatus
from db.labels import get_or_create_judge_version, upsert_judgments
from db.models import JudgeVersion, Judgment, Pair, Prompt, Response, ResponseScore
from db.session import session_scope
from db.upsert import chunked, upsert
from pipeline.errors import InputError, UserError
from pipeline.judging.base import JudgeIdentity, PairInput, failed_row
from pipeline.judging.chunk_loop import ChunkOptions, ChunkSteps, judge_in_chunks
from pipeline.judging.config import JudgeConfig


def build_judge(config: JudgeConfig):
    """The backend named by the config (heavy imports happen here, not at module import)."""
    if config.backend == "hf":
        from pipeline.judging.backends.hf_logprob import HfLogprobJudge

        return HfLogprobJudge(config)
    if config.backend == "openai":
        from pipeline.judging.backends.openai_compat import OpenAICompatJudge

        return OpenAICompatJudge(config)
    from pipeline.judging.backends.reward_model import RewardModelJudge

    return RewardModelJudge(config)


# Pairs per judge call and commit when the config says 0: a GPU wants big batches (a chunk's
# two orders are batched together); a CPU call of 16 pairs already fills several batches.
AUTO_CHUNK_PAIRS = {"cpu": 16, "cuda": 256}


def auto_chunk_size(judge: Any) -> int:
    model = getattr(judge, "model", None)
    if model is None:  # a server backend: enough pairs to keep every concurrent request busy
        return max(16, 4 * judge.config.concurrency)
    device = next(model.parameters()).device.type
    return AUTO_CHUNK_PAIRS.get(device, AUTO_CHUNK_PAIRS["cpu"])


def ensure_judge_version(session: Session, identity: JudgeIdentity) -> JudgeVersion:
    return get_or_create_judge_version(
        session,
        name=identity.name,
        backend=identity.backend,
        model_id=identity.model_id,
        model_revision=identity.model_revision,
        template_hash=identity.template_hash,
        label_tokens=identity.label_tokens,
        params=identity.params,
        confidence_kind=identity.confidence_kind,
    )


def read_pairs_file(path: str | Path) -> list[str]:
    """External pair ids, one per line (blank lines and # comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: pairs file not found")
    ids = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            ids.append(text)
    return ids


def resolve_external_ids(session: Session, path: str | Path) -> list[int]:
    wanted = read_pairs_file(path)
    found: dict[str, int] = {}
    for batch in chunked(wanted):
        found.update(
            session.execute(select(Pair.external_id, Pair.id).where(Pair.external_id.in_(batch)))
            .tuples()
            .all()
        )
    for number, external_id in enumerate(wanted, start=1):
        if external_id not in found:
            raise InputError(path, number, None, f"no pair with external id {external_id!r}")
    return [found[e] for e in wanted]


def pending_pair_ids(
    session: Session,
    judge_version_id: int,
    *,
    source: str | None = None,
    pair_ids: Sequence[int] | None = None,
    limit: int | None = None,
) -> list[int]:
    """Pairs without an ok/invalid judgment of this version, in id order (failed ones retry)."""
    done = exists().where(
        Judgment.pair_id == Pair.id,
        Judgment.judge_version_id == judge_version_id,
        Judgment.status.in_(SETTLED_JUDGMENT_STATUSES),
    )
    # Two identical responses are a tie by construction: never worth a judge call.
    query = select(Pair.id).where(~done, Pair.response_a_id != Pair.response_b_id)
    query = query.order_by(Pair.id)
    if source is not None:
        query = query.where(Pair.source == source)
    if pair_ids is None:
        return list(session.scalars(query.limit(limit)))
    chosen: set[int] = set()
    for batch in chunked(sorted(set(pair_ids))):
        chosen.update(session.scalars(query.where(Pair.id.in_(batch))))
    ordered = [pid for pid in dict.fromkeys(pair_ids) if pid in chosen]
    return ordered[:limit] if limit is not None else ordered


def pair_inputs(session: Session, ids: Sequence[int]) -> list[PairInput]:
    pairs = {p.id: p for p in session.scalars(select(Pair).where(Pair.id.in_(list(ids))))}
    return [
        PairInput(
            pid, pairs[pid].prompt.text, pairs[pid].response_a.text, pairs[pid].response_b.text
        )
        for pid in ids
    ]


@dataclass
class LabelReport:
    judge_version: str
    judge_version_id: int
    pending: int
    counts: dict[str, int] = field(default_factory=lambda: {status: 0 for status in JudgmentStatus})
    seconds: float = 0.0

    @property
    def pairs_per_s(self) -> float:
        done = sum(self.counts.values())
        return done / self.seconds if self.seconds > 0 else 0.0


def label_pairs(
    judge: Any,
    *,
    url: str | None = None,
    limit: int | None = None,
    source: str | None = None,
    pairs_file: str | Path | None = None,
    chunk_size: int = 0,
    progress: bool = True,
    after_chunk: Callable[[int], None] | None = None,
) -> LabelReport:
    """Label every pending pair with `judge`, committing once per chunk (0: auto_chunk_size)."""
    chunk_size = chunk_size or auto_chunk_size(judge)
    with session_scope(url) as session:
        version = ensure_judge_version(session, judge.identity)
        version_id, version_name = version.id, version.name
        selected = resolve_external_ids(session, pairs_file) if pairs_file else None
        todo = pending_pair_ids(session, version_id, source=source, pair_ids=selected, limit=limit)
    report = LabelReport(version_name, version_id, len(todo))
    steps = ChunkSteps(
        load=pair_inputs,
        judge=judge.judge,
        failed=lambda inputs, message: [failed_row(pair.pair_id, message) for pair in inputs],
        write=lambda session, rows: upsert_judgments(
            session, judge_version_id=version_id, rows=rows
        ),
        status=lambda row: row.status or JudgmentStatus.OK,
    )
    options = ChunkOptions(url, chunk_size, progress, after_chunk)
    judge_in_chunks(
        todo, steps, report, options, bar_label=("pair", f"labelling with {version_name}")
    )
    return report


# --- direct scores (d-RLAIF) ---------------------------------------------------------------


def pending_response_ids(
    session: Session, judge_version_id: int, *, source: str | None = None, limit: int | None = None
) -> list[int]:
    """Responses that appear in a pair (of `source`) and have no score from this version."""
    in_pair = exists().where(
        (Pair.response_a_id == Response.id) | (Pair.response_b_id == Response.id)
    )
    if source is not None:
        in_pair = in_pair.where(Pair.source == source)
    scored = exists().where(
        ResponseScore.response_id == Response.id,
        ResponseScore.judge_version_id == judge_version_id,
    )
    query = select(Response.id).where(in_pair, ~scored).order_by(Response.id).limit(limit)
    return list(session.scalars(query))


def score_responses(
    scorer: Any,
    *,
    url: str | None = None,
    name: str | None = None,
    limit: int | None = None,
    source: str | None = None,
    chunk_size: int = 64,
    progress: bool = True,
) -> LabelReport:
    """Store a direct score per response (ResponseScore), resumable like label_pairs."""
    from tqdm import tqdm

    identity = scorer.identity
    if name:
        identity = JudgeIdentity(**{**identity.__dict__, "name": name})
    with session_scope(url) as session:
        version = ensure_judge_version(session, identity)
        version_id, version_name = version.id, version.name
        todo = pending_response_ids(session, version_id, source=source, limit=limit)
    report = LabelReport(version_name, version_id, len(todo))
    started = time.perf_counter()
    bar = tqdm(
        total=len(todo), unit="response", desc=f"scoring with {version_name}", disable=not progress
    )
    try:
        for ids in chunked(todo, chunk_size):
            report.counts[JudgmentStatus.OK] += _score_chunk(scorer, url, ids, version_id)
            bar.update(len(ids))
    finally:
        bar.close()
        report.seconds = time.perf_counter() - started
    return report


def _score_chunk(scorer: Any, url: str | None, ids: Sequence[int], version_id: int) -> int:
    """Score the responses `ids` and store them in one transaction; returns how many."""
    from pipeline.judging.backends.direct import score_rows

    with session_scope(url) as session:
        rows = session.execute(
            select(Response.id, Response.text, Response.prompt_id).where(Response.id.in_(ids))
        ).all()
        prompts = dict(
            session.execute(
                select(Prompt.id, Prompt.text).where(Prompt.id.in_({r.prompt_id for r in rows}))
            ).all()
        )
    scores = scorer.score_detailed([prompts[r.prompt_id] for r in rows], [r.text for r in rows])
    values = [
        {**row, "judge_version_id": version_id} for row in score_rows(scores, [r.id for r in rows])
    ]
    with session_scope(url) as session:
        upsert(
            session,
            ResponseScore.__table__,
            values,
            keys=("response_id", "judge_version_id"),
            update=("score", "expected_rating", "digit_probs"),
        )
    return len(values)

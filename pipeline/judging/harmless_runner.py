"""responses of a system -> harmless judge -> database: resumable and chunked, like runner.py.

Each chunk of responses is rated, written with db.harmless.upsert_harmless_judgments and committed
in its own transaction (chunk_loop.judge_in_chunks, the loop runner.py uses too). A run killed at
any moment loses at most the chunk in flight; the next run selects exactly the responses this judge
version has no ok/invalid verdict for (failed ones are retried), and the (response, judge version)
unique key makes a duplicate impossible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from db.harmless import VerdictRow, upsert_harmless_judgments
from db.models import HarmlessJudgment, Prompt, Response
from db.session import session_scope
from pipeline.errors import InputError, UserError
from pipeline.evaluation.harmless_rate import system_responses
from pipeline.judging.chunk_loop import ChunkOptions, ChunkSteps, judge_in_chunks
from pipeline.judging.config import BUNDLED_SMOLLM2, read_settings_file
from pipeline.judging.runner import auto_chunk_size, ensure_judge_version

# Usable as `--judge NAME` without a file.
PRESETS: dict[str, dict[str, Any]] = {
    "harmless": {"name": "harmless-smollm2", "model": BUNDLED_SMOLLM2},
}


def is_config(spec: str) -> bool:
    return spec in PRESETS or Path(spec).expanduser().is_file()


def load_harmless_config(spec: str, overrides: dict[str, Any] | None = None):
    """A preset name ("harmless") or a .yaml/.yml/.toml file of HarmlessConfig settings (e.g.
    `model`, `constitution`, `labels`); `overrides` (flags) win."""
    from pipeline.judging.backends.harmless import config_from_mapping

    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if spec in PRESETS:
        return config_from_mapping({**PRESETS[spec], **overrides})
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(
            f"--judge {spec}: no such file, preset ({', '.join(PRESETS)}) or harmless judge version"
        )
    values = read_settings_file(path)
    try:
        return config_from_mapping({**values, **overrides})
    except (UserError, TypeError) as error:
        raise InputError(path, None, None, str(error)) from error


def pending_response_ids(
    session: Session, judge_version_id: int, systems: Sequence[str] | None = None
) -> list[int]:
    """The systems' responses without an ok/invalid verdict of this version, in id order."""
    slots = system_responses(systems)
    done = exists().where(
        HarmlessJudgment.response_id == slots.c.response_id,
        HarmlessJudgment.judge_version_id == judge_version_id,
        HarmlessJudgment.status.in_(("ok", "invalid")),
    )
    query = select(slots.c.response_id).where(~done).distinct().order_by(slots.c.response_id)
    return list(session.scalars(query))


def _inputs(session: Session, ids: Sequence[int]):
    from pipeline.judging.backends.harmless import ResponseInput

    rows = session.execute(
        select(Response.id, Response.text, Prompt.text)
        .join(Prompt, Prompt.id == Response.prompt_id)
        .where(Response.id.in_(list(ids)))
    ).all()
    by_id = {rid: ResponseInput(rid, prompt, text) for rid, text, prompt in rows}
    return [by_id[rid] for rid in ids]


def verdict_rows(ratings) -> list[VerdictRow]:
    return [
        VerdictRow(
            response_id=r.response_id,
            verdict=str(r.verdict),
            p_harmless=r.p_harmless,
            confidence=r.confidence,
            label_mass=r.label_mass,
            status="invalid" if r.verdict == "invalid" else "ok",
        )
        for r in ratings
    ]


@dataclass
class RateReport:
    judge_version: str
    judge_version_id: int
    pending: int
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "invalid": 0, "failed": 0})
    seconds: float = 0.0


def rate_responses(
    judge: Any,
    *,
    systems: Sequence[str] | None = None,
    url: str | None = None,
    chunk_size: int = 0,
    progress: bool = True,
    after_chunk: Callable[[int], None] | None = None,
) -> RateReport:
    """Rate every pending response of `systems` (all when None) with the harmless `judge`."""
    chunk_size = chunk_size or auto_chunk_size(judge)
    with session_scope(url) as session:
        version = ensure_judge_version(session, judge.identity)
        version_id, version_name = version.id, version.name
        todo = pending_response_ids(session, version_id, systems)
    report = RateReport(version_name, version_id, len(todo))
    steps = ChunkSteps(
        load=_inputs,
        judge=lambda inputs: verdict_rows(judge.rate(inputs)),
        failed=lambda inputs, message: [
            VerdictRow(i.response_id, None, None, None, None, "failed", message) for i in inputs
        ],
        write=lambda session, rows: upsert_harmless_judgments(
            session, judge_version_id=version_id, rows=rows
        ),
        status=lambda row: row.status,
    )
    options = ChunkOptions(url, chunk_size, progress, after_chunk)
    judge_in_chunks(
        todo, steps, report, options, bar_label=("response", f"rating with {version_name}")
    )
    return report

"""Policy evaluation: did training help? A policy P against a baseline B on held-out prompts.

held-out prompts -> one response each from P and from B (same decoding: greedy by default)
-> pairs (source "evaluation:<id>", systems set, P's slot a seeded coin per pair)
-> the pinned judge (pipeline/judging/runner.py; identical responses are a tie, never sent to it)
-> P's win rate over B (raw, length-controlled, PPI as people label; win_rates.py)
-> a spot-check sample of the pairs, and an Evaluation row (lineage and the judge's
   alignment at this moment, for drift).
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.enums import EvaluationStatus, JudgmentStatus
from db.label_rows import JudgmentRow
from db.labels import upsert_judgments
from db.models import Evaluation, JudgeVersion, Pair, Response, utcnow
from db.session import session_scope
from db.upsert import upsert
from pipeline.errors import UserError
from pipeline.evaluation.eval_inputs import ModelRef, held_out_prompts, resolve_model_ref
from pipeline.evaluation.judge_check import check_judge
from pipeline.evaluation.policy_summary import EvaluationSummary, evaluation_summary
from pipeline.ingest.records import PairRecord, sha256
from pipeline.ingest.values import is_clean
from pipeline.review.spot_check import MAX_SAMPLE, store_audit_sample

TIE_NOTE = "identical responses: a tie by construction, not sent to the judge"


@dataclass(frozen=True)
class Decoding:
    """The same for P and B. Greedy unless `sample`; sampling is seeded."""

    max_new_tokens: int = 128
    sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    max_prompt_tokens: int = 1024

    def as_params(self) -> dict[str, Any]:
        params = asdict(self)
        if not self.sample:  # greedy: the sampling knobs do not apply
            for key in ("temperature", "top_p", "seed"):
                params.pop(key)
        return params


@dataclass(frozen=True)
class EvaluateRequest:
    policy: str
    baseline: str
    judge: str = "default"  # a judge config file or preset (pinned as a judge version)
    prompts: str | None = None  # a pair source tag
    prompts_file: str | None = None
    n: int = 32
    seed: int = 0  # the prompt draw, the slot coins and the spot-check sample
    decoding: Decoding = Decoding()
    device: str = "auto"
    dtype: str = "auto"


def generate(model: ModelRef, prompts: list[str], decoding: Decoding, device: str, dtype: str):
    """One response per prompt (pipeline/generate.py's rendering, hf_forward's batching)."""
    import torch

    from pipeline.generate import _render_prompt
    from pipeline.judging.backends import hf_common, hf_forward

    lm, tokenizer = hf_common.load_causal_lm(model.path, None, dtype, device)
    sequences = [_render_prompt(tokenizer, p, decoding.max_prompt_tokens) for p in prompts]
    extra: dict[str, Any] = {"do_sample": decoding.sample}
    if decoding.sample:
        torch.manual_seed(decoding.seed)
        extra.update(temperature=decoding.temperature, top_p=decoding.top_p)
    outputs = hf_forward.generate_batched(
        lm,
        tokenizer,
        sequences,
        max_new_tokens=decoding.max_new_tokens,
        max_batch_tokens=hf_forward.batch_budget(0, lm),
        **extra,
    )
    return [storable(tokenizer.decode(o, skip_special_tokens=True).strip()) for o in outputs]


def storable(text: str) -> str:
    """Model output as both databases store it: a NUL (PostgreSQL refuses it in text) or a lone
    surrogate becomes U+FFFD, as the tokenizer already shows bytes it cannot decode."""
    if is_clean(text):
        return text
    return "".join(c if is_clean(c) else "\ufffd" for c in text)


def _store_pairs(session, evaluation, held, texts_p, texts_b, params, seed) -> int:
    coin = random.Random(seed)
    responses = [
        {
            "prompt_id": pid,
            "text": text,
            "text_hash": sha256(text),
            "policy_id": system,
            "generation_params": params,
        }
        for (pid, _, _), tp, tb in zip(held, texts_p, texts_b, strict=True)
        for text, system in ((tp, evaluation.policy), (tb, evaluation.baseline))
    ]
    upsert(session, Response.__table__, responses, keys=("prompt_id", "text_hash"))
    ids = {
        (r.prompt_id, r.text_hash): r.id
        for r in session.execute(
            select(Response.id, Response.prompt_id, Response.text_hash).where(
                Response.prompt_id.in_([h[0] for h in held])
            )
        )
    }
    rows = []
    for (pid, prompt, prompt_hash), tp, tb in zip(held, texts_p, texts_b, strict=True):
        p_first = coin.random() < 0.5
        a, b = (tp, tb) if p_first else (tb, tp)
        sys_a, sys_b = (
            (evaluation.policy, evaluation.baseline)
            if p_first
            else (evaluation.baseline, evaluation.policy)
        )
        meta = {"evaluation_id": evaluation.id, "policy_slot": "A" if p_first else "B"}
        record = PairRecord("", prompt, a, b, meta, system_a=sys_a, system_b=sys_b)
        rows.append(
            {
                "external_id": f"eval:{evaluation.id}:{prompt_hash[:24]}",
                "prompt_id": pid,
                "response_a_id": ids[(pid, sha256(a))],
                "response_b_id": ids[(pid, sha256(b))],
                "source": evaluation.pair_source,
                "system_a": sys_a,
                "system_b": sys_b,
                "metadata": meta,
                "content_hash": record.content_hash,
            }
        )
    upsert(session, Pair.__table__, rows, keys=("external_id",))
    return len(rows)


def _record_ties(session: Session, judge_version_id: int, pair_source: str) -> int:
    """A judgment 'tie' for each pair of identical responses, so the win-rate code counts them."""
    ids = list(
        session.scalars(
            select(Pair.id).where(
                Pair.source == pair_source, Pair.response_a_id == Pair.response_b_id
            )
        )
    )
    rows = [
        JudgmentRow(
            pair_id=pid,
            label="tie",
            p_a=0.5,
            confidence=1.0,
            p_a_ab=0.5,
            p_a_ba=0.5,
            swap_inconsistent=False,
            raw_output=TIE_NOTE,
            status=JudgmentStatus.OK,
        )
        for pid in ids
    ]
    upsert_judgments(session, judge_version_id=judge_version_id, rows=rows, actor="evaluation")
    return len(ids)


def _judge_pairs(judge, url: str | None, pair_source: str) -> tuple[int, str, int]:
    from pipeline.judging.runner import label_pairs

    report = label_pairs(judge, url=url, source=pair_source, progress=False)
    if report.counts[JudgmentStatus.FAILED]:
        raise UserError(
            f"the judge failed on {report.counts['failed']} pairs; "
            f"`rlaif label --source {pair_source}` retries them"
        )
    return report.judge_version_id, report.judge_version, report.pending


class StageClock:
    """Wall (perf_counter) and CPU (process_time, all threads) seconds per stage; each lap
    starts where the last one ended, so the stages add up to the whole run."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._mark = (time.perf_counter(), time.process_time())

    def lap(self, stage: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.wall[stage] = round(now[0] - self._mark[0], 3)
        self.cpu[stage] = round(now[1] - self._mark[1], 3)
        self._mark = now


def _generate_and_judge(request, policy, baseline, held, evaluation_id, judge, url,
                        clock: StageClock) -> int:  # fmt: skip
    texts = [p[1] for p in held.prompts]
    d = request.decoding
    texts_p = generate(policy, texts, d, request.device, request.dtype)
    same = policy.path == baseline.path
    texts_b = texts_p if same else generate(baseline, texts, d, request.device, request.dtype)
    clock.lap("generation")  # with resolving the models and drawing the prompts
    with session_scope(url) as session:
        evaluation = session.get(Evaluation, evaluation_id)
        params = d.as_params()
        _store_pairs(session, evaluation, held.prompts, texts_p, texts_b, params, request.seed)
        pair_source = evaluation.pair_source

    if judge is None:
        from pipeline.judging.config import load_judge_config
        from pipeline.judging.runner import build_judge

        judge = build_judge(load_judge_config(request.judge))
    version_id, _, _ = _judge_pairs(judge, url, pair_source)
    clock.lap("judging")  # with storing the pairs, as import + label do by hand

    return version_id


def _report(
    url, evaluation_id: int, version_id: int, created_by: str, seed: int
) -> EvaluationSummary:
    """Ties recorded, the spot-check sample drawn, the judge re-validated, the figures kept."""
    pair_source = f"evaluation:{evaluation_id}"
    with session_scope(url) as session:
        evaluation = session.get(Evaluation, evaluation_id)
        version = session.get(JudgeVersion, version_id)
        evaluation.judge_version_id = version_id
        _record_ties(session, version_id, pair_source)
        different = session.scalar(
            select(func.count()).where(
                Pair.source == pair_source, Pair.response_a_id != Pair.response_b_id
            )
        )
        if different:  # identical pairs are ties by construction: nothing for people to check
            sample = store_audit_sample(
                session,
                created_by=created_by,
                judge_version_id=version_id,
                size=min(different, MAX_SAMPLE),
                seed=seed,
                name=f"evaluation {evaluation_id} spot-check",
                pair_source=pair_source,
            )
            evaluation.audit_sample_id = sample.id
        check = check_judge(session, version.name, version_id, before_id=evaluation_id)
        evaluation.alignment = check.as_dict()
        session.flush()
        summary = evaluation_summary(session, evaluation)
        evaluation.result = summary.stored_result()
        evaluation.status, evaluation.ended_at = EvaluationStatus.SUCCEEDED, utcnow()
    return summary


def _interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt behind `error`, also where other code wrapped it: one that lands
    in a class body during an import (the job's SIGTERM early in a run) comes back as
    Python 3.11's "RuntimeError: Error calling __set_name__ ...", caused by it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def run_evaluation(
    request: EvaluateRequest,
    *,
    created_by: str,
    judge=None,
    url: str | None = None,
    policy_job_id: int | None = None,
) -> EvaluationSummary:
    """Run one evaluation end to end; returns its summary with the seconds per stage (wall,
    and CPU as `cpu_seconds`).
    `judge` (an object with the judge interface) replaces building one from request.judge."""
    clock = StageClock()
    with session_scope(url) as session:
        policy = resolve_model_ref(session, request.policy)
        baseline = resolve_model_ref(session, request.baseline)
        held = held_out_prompts(
            session,
            policy,
            n=request.n,
            seed=request.seed,
            source=request.prompts,
            prompts_file=request.prompts_file,
        )
        evaluation = Evaluation(
            policy=policy.system,
            policy_path=policy.path,
            policy_job_id=policy_job_id or policy.job_id,
            baseline=baseline.system,
            baseline_path=baseline.path,
            snapshot_id=held.snapshot_id,
            pair_source=f"evaluation:pending:{time.time_ns()}",
            prompt_source=held.source,
            n_prompts=len(held.prompts),
            decoding={**request.decoding.as_params(), "seed_pairs": request.seed},
            created_by=created_by,
        )
        session.add(evaluation)
        session.flush()
        evaluation.pair_source = f"evaluation:{evaluation.id}"
        evaluation_id = evaluation.id
    try:
        version_id = _generate_and_judge(request, policy, baseline, held, evaluation_id, judge,
                                         url, clock)  # fmt: skip
        summary = _report(url, evaluation_id, version_id, created_by, request.seed)
        clock.lap("reporting")
    except BaseException as error:  # recorded, never left "running"
        with session_scope(url) as session:
            failed = session.get(Evaluation, evaluation_id)
            stop = _interrupt_behind(error)  # Ctrl-C, or the job's SIGTERM
            status = EvaluationStatus.FAILED if stop is None else EvaluationStatus.CANCELLED
            failed.status, failed.ended_at = status, utcnow()
            cause = error if stop is None else stop
            failed.result = {"error": f"{type(cause).__name__}: {cause}"[:2000]}
        raise
    return replace(summary, seconds=clock.wall, cpu_seconds=clock.cpu)

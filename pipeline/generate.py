"""Candidate generation: sample n responses per prompt from a policy, store them, form pairs.

Responses keep the policy id (model id plus revision or weights hash) and the sampling
parameters. Pairs get stable external ids derived from the prompt, the policy, the parameters
and the sample indices, so re-running is idempotent: prompts that already have their pairs from
this policy and these parameters are skipped.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import exists, select

from db.models import Pair, Prompt, Response
from db.session import session_scope
from db.upsert import chunked, upsert
from pipeline.ingest.records import PairRecord, sha256


@dataclass
class SamplingParams:
    n: int = 2
    max_new_tokens: int = 128
    temperature: float = 0.8
    top_p: float = 0.95
    seed: int = 0


@dataclass
class GenerateReport:
    policy_id: str
    prompts: int = 0
    responses: int = 0
    pairs: int = 0
    skipped_identical: int = 0  # prompts whose samples were all the same text


def pair_external_id(
    prompt_hash: str, policy_id: str, params: dict[str, Any], i: int, j: int
) -> str:
    key = json.dumps([prompt_hash, policy_id, params, i, j], sort_keys=True)
    return "gen:" + sha256(key)[:24]


def _render_prompt(tokenizer, text: str, max_prompt_tokens: int) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        chat = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(chat, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(text)["input_ids"]
    return list(ids[-max_prompt_tokens:])


def generate_candidates(
    policy: str,
    *,
    params: SamplingParams | None = None,
    url: str | None = None,
    source: str | None = None,
    limit: int | None = None,
    pair_source: str = "generated",
    device: str = "auto",
    dtype: str = "auto",
    max_batch_tokens: int = 0,
    max_prompt_tokens: int = 1024,
    chunk_prompts: int = 16,
    progress: bool = True,
) -> GenerateReport:
    import torch
    from tqdm import tqdm

    from pipeline.judging.backends import hf_common, hf_forward

    params = params or SamplingParams()
    if params.n < 2:
        raise ValueError("n must be at least 2 to form pairs")
    source_path, model_id, revision = hf_common.resolve_model(policy)
    policy_id = f"{model_id}@{revision}" if revision else model_id
    run = _Run(url, params, policy_id, pair_source, GenerateReport(policy_id))
    model, tokenizer = hf_common.load_causal_lm(source_path, None, dtype, device, model_id)
    max_batch_tokens = hf_forward.batch_budget(max_batch_tokens, model)
    todo = _pending_prompts(run, source)[:limit]
    bar = tqdm(
        total=len(todo), unit="prompt", desc=f"generating with {model_id}", disable=not progress
    )
    for number, chunk in enumerate(chunked(todo, chunk_prompts)):
        sequences = [
            _render_prompt(tokenizer, p.text, max_prompt_tokens)
            for p in chunk
            for _ in range(params.n)
        ]
        # Seeded per chunk: a resumed run samples the same texts as an uninterrupted one.
        torch.manual_seed(params.seed + number)
        outputs = hf_forward.generate_batched(
            model,
            tokenizer,
            sequences,
            max_new_tokens=params.max_new_tokens,
            max_batch_tokens=max_batch_tokens,
            do_sample=True,
            temperature=params.temperature,
            top_p=params.top_p,
        )
        texts = [tokenizer.decode(o, skip_special_tokens=True).strip() for o in outputs]
        _store_chunk(run, chunk, texts)
        bar.update(len(chunk))
    bar.close()
    return run.report


@dataclass
class _Run:
    """One generation run: where it writes, what it samples, and its running counts."""

    url: str | None
    params: SamplingParams
    policy_id: str
    pair_source: str
    report: GenerateReport

    @property
    def stored_params(self) -> dict[str, Any]:
        return asdict(self.params)

    def samples(self, texts: list[str], index: int) -> list[str]:
        """The n samples of the index-th prompt of a chunk."""
        n = self.params.n
        return texts[index * n : (index + 1) * n]


def _pending_prompts(run: _Run, source: str | None) -> list:
    """Prompts (of pairs with `source`, if given) without pairs from this policy and these
    parameters yet."""
    with session_scope(run.url) as session:
        query = select(Prompt.id, Prompt.text, Prompt.text_hash).order_by(Prompt.id)
        if source is not None:
            query = query.where(exists().where(Pair.prompt_id == Prompt.id, Pair.source == source))
        prompts = session.execute(query).all()
        first_ids = {
            pair_external_id(p.text_hash, run.policy_id, run.stored_params, 0, 1): p
            for p in prompts
        }
        existing: set[str] = set()
        for batch in chunked(list(first_ids)):
            existing.update(
                session.scalars(select(Pair.external_id).where(Pair.external_id.in_(batch)))
            )
    return [p for key, p in first_ids.items() if key not in existing]


def _store_chunk(run: _Run, chunk, texts: list[str]) -> None:
    with session_scope(run.url) as session:  # one commit per chunk
        ids = _store_responses(session, run, chunk, texts)
        pair_rows = []
        for index, prompt in enumerate(chunk):
            samples = run.samples(texts, index)
            run.report.prompts += 1
            run.report.responses += len(samples)
            formed = [
                _pair_row(run, prompt, samples, i, j, ids)
                for i, j in itertools.combinations(range(len(samples)), 2)
                if samples[i] != samples[j]
            ]
            run.report.skipped_identical += not formed
            pair_rows += formed
        if pair_rows:
            upsert(session, Pair.__table__, pair_rows, keys=("external_id",))
            run.report.pairs += len(pair_rows)


def _store_responses(session, run: _Run, chunk, texts: list[str]) -> dict[tuple[int, str], int]:
    """Upsert the chunk's responses; their ids by (prompt id, text hash)."""
    response_rows = [
        {
            "prompt_id": prompt.id,
            "text": text,
            "text_hash": sha256(text),
            "policy_id": run.policy_id,
            "generation_params": run.stored_params,
        }
        for index, prompt in enumerate(chunk)
        for text in run.samples(texts, index)
    ]
    upsert(session, Response.__table__, response_rows, keys=("prompt_id", "text_hash"))
    query = select(Response.id, Response.prompt_id, Response.text_hash).where(
        Response.prompt_id.in_([p.id for p in chunk])
    )
    return {(r.prompt_id, r.text_hash): r.id for r in session.execute(query)}


def _pair_row(run: _Run, prompt, samples: list[str], i: int, j: int, ids) -> dict[str, Any]:
    """The Pair row of samples i and j of one prompt."""
    meta = {"policy": run.policy_id, "sample_indices": [i, j]}
    # Both responses come from the policy: a self-comparison (win rate 0.5).
    record = PairRecord(
        "",
        prompt.text,
        samples[i],
        samples[j],
        meta,
        system_a=run.policy_id,
        system_b=run.policy_id,
    )
    return {
        "external_id": pair_external_id(prompt.text_hash, run.policy_id, run.stored_params, i, j),
        "prompt_id": prompt.id,
        "response_a_id": ids[(prompt.id, sha256(samples[i]))],
        "response_b_id": ids[(prompt.id, sha256(samples[j]))],
        "source": run.pair_source,
        "system_a": run.policy_id,
        "system_b": run.policy_id,
        "length_diff": len(samples[i]) - len(samples[j]),
        "metadata": meta,  # the column's name; `Pair.meta` in the ORM (reserved there)
        "content_hash": record.content_hash,
    }

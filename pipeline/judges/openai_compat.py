"""OpenAI-compatible backend (vLLM, Ollama, llama.cpp server, OpenAI): the only module that
imports `openai`.

When the server returns `logprobs`/`top_logprobs`, P(first slot) comes from the probabilities of
the label tokens at the single answer token (confidence_kind "logprob"). Otherwise we sample the
answer k times, parse the first label in each, and use the vote share (confidence_kind
"sampled": a weaker kind of confidence, recorded in the judge version). With logprobs="auto" one
probe request at start-up decides which.

Requests run concurrently (a semaphore of `concurrency`), each with a timeout, retried with
exponential backoff on timeouts, connection errors, 429 and 5xx. A pair whose requests still
fail is returned as status "failed" with the error; a later run retries it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
from typing import Any

import openai

from pipeline.errors import UserError
from pipeline.judges.base import JudgeIdentity, PairInput, combine_orders, failed_row, parse_label
from pipeline.judges.judge_config import JudgeConfig
from pipeline.judges.templates import load_template

RETRYABLE = (
    openai.APITimeoutError,
    openai.APIConnectionError,
    openai.RateLimitError,
    openai.InternalServerError,
)


class RequestFailed(Exception):
    pass


def first_slot_from_top_logprobs(
    top: list[tuple[str, float]], labels: dict[str, str]
) -> tuple[float, float] | None:
    """(P(first slot) among label tokens, their total probability) from (token, logprob) pairs;
    tokens are matched after stripping spaces. None when no label token is listed."""
    mass = {"A": 0.0, "B": 0.0}
    for token, logprob in top:
        for slot, value in labels.items():
            if token.strip() == value:
                mass[slot] += math.exp(logprob)
    total = mass["A"] + mass["B"]
    if total <= 0:
        return None
    return mass["A"] / total, total


class OpenAICompatJudge:
    def __init__(self, config: JudgeConfig):
        if not config.base_url and not os.environ.get(config.api_key_env):
            raise UserError(
                "the openai backend needs base_url (a local server) or an API key in "
                f"${config.api_key_env}"
            )
        self.config = config
        self.template = load_template(config.template)
        self.on_progress = None
        self.mode = {"always": "logprob", "never": "sampled"}.get(config.logprobs)
        if self.mode is None:
            self.mode = self._probe()

    def _client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.config.base_url,
            api_key=os.environ.get(self.config.api_key_env) or "not-needed",
            timeout=self.config.timeout_s,
            max_retries=0,  # our own retry loop, so that failures are counted and recorded
        )

    def _probe(self) -> str:
        """One request: does this server return top_logprobs?"""
        probe = PairInput(0, "Say which is better.", "A good answer.", "A bad answer.")

        async def run() -> str:
            async with self._client() as client:
                reply = await self._request(client, self._messages(probe, False), logprobs=True)
            logprobs = reply.choices[0].logprobs
            return "logprob" if logprobs and logprobs.content else "sampled"

        try:
            return asyncio.run(run())
        except RequestFailed as error:
            raise UserError(
                f"cannot reach the judge server at {self.config.base_url}: {error}"
            ) from error

    @property
    def identity(self) -> JudgeIdentity:
        return JudgeIdentity(
            name=self.config.name,
            backend="openai",
            model_id=self.config.model,
            model_revision=self.config.revision,
            template_hash=self.template.hash,
            label_tokens=dict(self.config.labels),
            params=self.config.version_params(),
            confidence_kind=self.mode,
        )

    def _messages(self, pair: PairInput, swapped: bool) -> list[dict[str, str]]:
        first, second = (
            (pair.response_b, pair.response_a) if swapped else (pair.response_a, pair.response_b)
        )
        rendered = self.template.render(
            prompt=pair.prompt,
            response_a=first,
            response_b=second,
            constitution=self.config.constitution,
        )
        return [{"role": "user", "content": rendered.text}]

    async def _request(self, client, messages, *, logprobs: bool, sample: bool = False):
        params: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "max_tokens": 1 if logprobs else self.config.max_tokens,
            "temperature": self.config.temperature if sample else 0.0,
        }
        if logprobs:
            params.update(logprobs=True, top_logprobs=self.config.top_logprobs)
        last: Exception | None = None
        for attempt in range(self.config.retries + 1):
            try:
                return await client.chat.completions.create(**params)
            except RETRYABLE as error:
                last = error
                if attempt < self.config.retries:
                    delay = self.config.backoff_s * 2**attempt
                    await asyncio.sleep(delay * (0.5 + random.random() / 2))
            except openai.APIError as error:  # 4xx other than 429: retrying will not help
                raise RequestFailed(f"{type(error).__name__}: {error}") from error
        raise RequestFailed(
            f"{type(last).__name__} after {self.config.retries + 1} attempts: {last}"
        )

    async def _order(self, client, semaphore, pair: PairInput, swapped: bool):
        """(P(first slot), raw record) for one order; None probability when unparseable."""
        messages = self._messages(pair, swapped)
        if self.mode == "logprob":
            async with semaphore:
                reply = await self._request(client, messages, logprobs=True)
            choice = reply.choices[0]
            content = choice.logprobs.content if choice.logprobs else None
            top = [(t.token, t.logprob) for t in content[0].top_logprobs] if content else []
            found = first_slot_from_top_logprobs(top, self.config.labels)
            raw = {"text": choice.message.content, "top_logprobs": top[:10]}
            return (found[0] if found else None), raw

        async def one() -> str:
            async with semaphore:
                reply = await self._request(client, messages, logprobs=False, sample=True)
            return reply.choices[0].message.content or ""

        texts = await asyncio.gather(*(one() for _ in range(self.config.samples)))
        votes = [parse_label(t, self.config.labels) for t in texts]
        valid = [v for v in votes if v]
        p_first = sum(v == "A" for v in valid) / len(valid) if valid else None
        return p_first, {"samples": texts}

    async def _pair(self, client, semaphore, pair: PairInput) -> dict[str, Any]:
        # Both orders run to the end (retries included) before the pair is decided.
        results = await asyncio.gather(
            self._order(client, semaphore, pair, False),
            self._order(client, semaphore, pair, True),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            if not all(isinstance(e, Exception) for e in errors):
                raise errors[0]  # cancellation, KeyboardInterrupt: not a judge failure
            message = "; ".join(
                str(e) if isinstance(e, RequestFailed) else f"{type(e).__name__}: {e}"
                for e in errors
            )
            row = failed_row(pair.pair_id, message)
        else:
            (p_ab, raw_ab), (p_ba_first, raw_ba) = results
            raw = json.dumps({"ab": raw_ab, "ba": raw_ba})[:20000]
            if p_ab is None or p_ba_first is None:
                row = {
                    "pair_id": pair.pair_id,
                    "label": "invalid",
                    "status": "invalid",
                    "raw_output": raw,
                    "error": "no label in the answer",
                }
            else:
                row = combine_orders(p_ab, 1 - p_ba_first, self.config.tie_band)
                row.update(pair_id=pair.pair_id, raw_output=raw)
        if self.on_progress:
            self.on_progress(1)
        return row

    def judge(self, pairs: list[PairInput]) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            semaphore = asyncio.Semaphore(self.config.concurrency)
            async with self._client() as client:
                return await asyncio.gather(*(self._pair(client, semaphore, p) for p in pairs))

        return asyncio.run(run()) if pairs else []

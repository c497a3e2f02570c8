"""OpenAI-compatible backend (vLLM, Ollama, llama.cpp server, OpenAI): the only module that
imports `openai`.

When the server returns `logprobs`/`top_logprobs`, P(first slot) comes from the probabilities of
the label tokens at the single answer token (confidence_kind "logprob"). Otherwise we sample the
answer k times, parse the first label in each, and use the vote share (confidence_kind
"sampled": a weaker kind of confidence, recorded in the judge version). With logprobs="auto" one
probe request at start-up decides which.

Prompt lists: when the server offers the legacy completions endpoint with a list of prompts and
logprobs (vLLM, llama.cpp server, TGI), the chat template is applied on our side
(pipeline/judging/chat_render.py) and `prompts_per_request` prompts go in one request, both
orders of a pair side by side (so a prefix cache sees their shared start), `max_tokens: 1`,
`logprobs: 20`. One probe per run decides; the mode and the template's source are pinned in the
judge version. Otherwise: one chat request per order, as below.

Requests run concurrently (a semaphore of `concurrency`), each with a timeout, retried with
exponential backoff on timeouts, connection errors, 429 and 5xx. A pair whose requests still
fail is returned as status "failed" with the error (every pair of a failed prompt-list request,
and a pair the reply has no answer for); a later run retries it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import random
import ssl
from dataclasses import replace
from typing import Any

import httpx
import openai

from db.enums import JudgmentStatus
from db.label_rows import JudgmentRow
from pipeline.errors import UserError
from pipeline.judging import chat_render
from pipeline.judging.base import JudgeIdentity, PairInput, combine_orders, failed_row, parse_label
from pipeline.judging.config import JudgeConfig
from pipeline.judging.templates import load_template
from pipeline.settings import env_secret

COMPLETION_LOGPROBS = 20  # top alternatives per prompt on the completions endpoint
PROBE = PairInput(0, "Say which is better.", "A good answer.", "A bad answer.")

RETRYABLE = (
    openai.APITimeoutError,
    openai.APIConnectionError,
    openai.RateLimitError,
    openai.InternalServerError,
)


class RequestFailed(Exception):
    pass


@functools.cache
def _tls_context() -> ssl.SSLContext:
    import certifi  # the CA bundle httpx would load

    return ssl.create_default_context(cafile=certifi.where())


def first_slot_from_top_logprobs(
    top: list[tuple[str, float]], labels: dict[str, str]
) -> tuple[float, float] | None:
    """(P(first slot) among label tokens, their total probability) from (token, logprob) pairs;
    tokens are matched after stripping spaces. None when no label token is listed."""
    slots = {value: slot for slot, value in labels.items()}
    mass = {"A": 0.0, "B": 0.0}
    for token, logprob in top:
        slot = slots.get(token.strip())
        if slot is not None:
            mass[slot] += math.exp(logprob)
    total = mass["A"] + mass["B"]
    if total <= 0:
        return None
    return mass["A"] / total, total


class OpenAICompatJudge:
    def __init__(self, config: JudgeConfig):
        if not config.base_url and not env_secret(config.api_key_env):
            raise UserError(
                "the openai backend needs base_url (a local server) or an API key in "
                f"${config.api_key_env}"
            )
        self.config = config
        self.template = load_template(config.template)
        self.on_progress = None
        self.renderer: chat_render.PromptRenderer | None = None
        if config.prompt_lists == "auto" and config.logprobs != "never":
            self.renderer = self._probe_prompt_lists()
        if self.renderer is not None:
            self.mode = "logprob"
        else:
            self.mode = {"always": "logprob", "never": "sampled"}.get(config.logprobs)
        if self.mode is None:
            self.mode = self._probe()

    @property
    def request_mode(self) -> str:
        return "completions-prompt-lists" if self.renderer else "chat"

    def _probe_prompt_lists(self) -> chat_render.PromptRenderer | None:
        """A renderer for the chat template, and one request with a list of two prompts that
        comes back with logprobs for each; None (chat requests) when either is missing."""
        renderer = chat_render.local_renderer(self.config.tokenizer, self.config.model)
        if renderer is None and self.config.base_url:  # a local server may offer /tokenize
            key = env_secret(self.config.api_key_env)
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            renderer = chat_render.server_renderer(
                self.config.base_url, self.config.model, self.config.timeout_s, headers
            )
        if renderer is None:
            return None

        async def run() -> bool:
            prompts = await renderer.render([self._text(PROBE, False), self._text(PROBE, True)])
            async with self._client() as client:
                choices = await self._completions(client, prompts)
            return len(choices) == 2 and all(self._from_choice(c) for c in choices)

        try:
            return renderer if asyncio.run(run()) else None
        except (RequestFailed, AttributeError, TypeError, KeyError, ValueError):
            return None  # no such endpoint, no prompt lists, or a reply of another shape

    def _client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.config.base_url,
            api_key=env_secret(self.config.api_key_env) or "not-needed",
            timeout=self.config.timeout_s,
            max_retries=0,  # our own retry loop, so that failures are counted and recorded
            # one TLS context per process: building it costs ~0.5 s per client, i.e. per call
            http_client=openai.DefaultAsyncHttpxClient(verify=_tls_context()),
        )

    def _probe(self) -> str:
        """One request: does this server return top_logprobs?"""

        async def run() -> str:
            async with self._client() as client:
                reply = await self._request(client, self._messages(PROBE, False), logprobs=True)
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
            params={
                **self.config.version_params(),
                "request_mode": self.request_mode,
                "chat_template": self.renderer.name if self.renderer else "server",
            },
            confidence_kind=self.mode,
        )

    def _text(self, pair: PairInput, swapped: bool) -> str:
        first, second = (
            (pair.response_b, pair.response_a) if swapped else (pair.response_a, pair.response_b)
        )
        return self.template.render(
            prompt=pair.prompt,
            response_a=first,
            response_b=second,
            constitution=self.config.constitution,
        ).text

    def _messages(self, pair: PairInput, swapped: bool) -> list[dict[str, str]]:
        return [{"role": "user", "content": self._text(pair, swapped)}]

    def _completion(self, prompts: list[str] | list[list[int]]) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "prompt": prompts,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": COMPLETION_LOGPROBS,
        }

    async def _request(self, client, messages, *, logprobs: bool, sample: bool = False):
        params: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "max_tokens": 1 if logprobs else self.config.max_tokens,
            "temperature": self.config.temperature if sample else 0.0,
        }
        if logprobs:
            params.update(logprobs=True, top_logprobs=self.config.top_logprobs)
        return await self._call(client.chat.completions.create, params)

    async def _call(self, create, params: dict[str, Any]):
        """`create(**params)` with our retry loop: RequestFailed once retries are spent."""
        last: Exception | None = None
        for attempt in range(self.config.retries + 1):
            try:
                return await create(**params)
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

    def _row(self, pair: PairInput, ab: tuple, ba: tuple) -> JudgmentRow:
        """The judgment from both orders' (P(first slot) or None, raw record)."""
        (p_ab, raw_ab), (p_ba_first, raw_ba) = ab, ba
        raw = json.dumps({"ab": raw_ab, "ba": raw_ba})[:20000]
        if p_ab is None or p_ba_first is None:
            return JudgmentRow(
                pair_id=pair.pair_id,
                label=JudgmentStatus.INVALID.value,
                status=JudgmentStatus.INVALID,
                raw_output=raw,
                error="no label in the answer",
            )
        row = combine_orders(p_ab, 1 - p_ba_first, self.config.tie_band, pair_id=pair.pair_id)
        return replace(row, raw_output=raw)

    async def _pair(self, client, semaphore, pair: PairInput) -> JudgmentRow:
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
            row = self._row(pair, *results)
        if self.on_progress:
            self.on_progress(1)
        return row

    async def _completions(self, client, prompts: list[str] | list[list[int]]) -> list[dict]:
        """The reply's choices as plain JSON. The client's typed path costs more than the rest
        of the judge together (a reply of 64 prompts x 20 alternatives: ~80 ms into typed
        models; the request body: ~20 ms of recursive transforms); the plain POST goes through
        the same client, its errors and our retries."""

        async def post(**body: Any) -> httpx.Response:
            return await client.post("/completions", cast_to=httpx.Response, body=body)

        reply = await self._call(post, self._completion(prompts))
        return json.loads(reply.content)["choices"]

    def _from_choice(self, choice: dict) -> tuple[float | None, dict[str, Any]] | None:
        """(P(first slot) or None, raw record) from one completions choice; None when the
        choice carries no logprobs (a failed prompt)."""
        top_logprobs = (choice.get("logprobs") or {}).get("top_logprobs")
        if not top_logprobs or not top_logprobs[0]:
            return None
        top = sorted(top_logprobs[0].items(), key=lambda item: -item[1])
        found = first_slot_from_top_logprobs(top, self.config.labels)
        return (found[0] if found else None), {"text": choice.get("text"), "top_logprobs": top[:10]}

    async def _prompt_list(self, client, semaphore, pairs: list[PairInput]) -> list[JudgmentRow]:
        """One completions request for `pairs`, both orders side by side: [ab0, ba0, ab1, ...].

        A request that fails after its retries fails all its pairs; a pair the reply has no
        answer for (a missing choice, no logprobs) fails alone. No pair is ever dropped."""
        texts = [self._text(pair, swapped) for pair in pairs for swapped in (False, True)]
        try:
            async with semaphore:
                prompts = await self.renderer.render(texts)
                reply = await self._completions(client, prompts)
        except RequestFailed as error:
            rows = [failed_row(pair.pair_id, str(error)) for pair in pairs]
        except Exception as error:  # e.g. /tokenize failing: these pairs fail, the run goes on
            rows = [failed_row(p.pair_id, f"{type(error).__name__}: {error}") for p in pairs]
        else:
            choices = {choice["index"]: choice for choice in reply}
            rows = []
            for k, pair in enumerate(pairs):
                found = [choices.get(2 * k), choices.get(2 * k + 1)]
                orders = [self._from_choice(c) if c is not None else None for c in found]
                if None in orders:
                    rows.append(
                        failed_row(
                            pair.pair_id,
                            "the server's reply has no logprobs for this pair's prompts",
                        )
                    )
                else:
                    rows.append(self._row(pair, *orders))
        if self.on_progress:
            self.on_progress(len(pairs))
        return rows

    def judge(self, pairs: list[PairInput]) -> list[JudgmentRow]:
        async def run() -> list[JudgmentRow]:
            semaphore = asyncio.Semaphore(self.config.concurrency)
            async with self._client() as client:
                if self.renderer is None:
                    return await asyncio.gather(*(self._pair(client, semaphore, p) for p in pairs))
                size = max(1, self.config.prompts_per_request // 2)
                chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
                done = await asyncio.gather(
                    *(self._prompt_list(client, semaphore, c) for c in chunks)
                )
                return [row for rows in done for row in rows]

        return asyncio.run(run()) if pairs else []

"""The OpenAI-compatible backend's prompt-list mode against a REAL HTTP server on loopback.

The server is a small test server written here (http.server) that implements the legacy
`/v1/completions` endpoint with a list of prompts (`choices[i].index` is the prompt's position,
`logprobs.top_logprobs[0]` its alternatives, as vLLM answers) and, for one model, vLLM's
`/tokenize` with chat messages. It is a stand-in for vLLM, which cannot run here; the judge under
test is unmodified and talks HTTP to it through the real `openai` client.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.judging.base import PairInput
from pipeline.judging.config import JudgeConfig
from tests.judging.test_judge_openai import PAIR, TOP_LOGPROBS, server  # noqa: F401 (a chat-only server)

# The tiny tokenizer's chat template around a user message (tests/helpers/tiny_models.py).
USER, ASSISTANT = "<|user|>\n", "\n<|assistant|>\n"


class ListServer:
    def __init__(self):
        self.requests: Counter[str] = Counter()
        self.prompt_lists: list[list[str]] = []
        self.failed_once: set[str] = set()
        self.lock = threading.Lock()


def shown_first(prompt: str) -> str:
    """The first word of Response A; what the server answers for it is TOP_LOGPROBS["bad"]
    for "bad", else TOP_LOGPROBS["good"]."""
    match = re.search(r"\[Response A\]\n([\w-]+)", prompt)
    return match.group(1) if match else "good"


def make_handler(state: ListServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            model = body["model"]
            if self.path == "/tokenize" and model == "tokenize":
                # vLLM's chat tokenisation; here one "token" per character, so it reads back.
                text = USER + body["messages"][0]["content"] + ASSISTANT
                self._send(200, {"count": len(text), "tokens": [ord(c) for c in text]})
                return
            if self.path != "/v1/completions":
                self._send(404, {"error": {"message": "not found", "type": "not_found"}})
                return
            prompts = [p if isinstance(p, str) else "".join(map(chr, p)) for p in body["prompt"]]
            assert body["max_tokens"] == 1 and body["logprobs"] == 20
            with state.lock:
                state.requests[model] += 1
                state.prompt_lists.append(prompts)
                first_time = prompts[0] not in state.failed_once
                state.failed_once.add(prompts[0])
            if any("server-error" in p for p in prompts) and (model == "lists" or first_time):
                # "lists" fails this batch every time; "flaky" once, then answers
                self._send(500, {"error": {"message": "boom", "type": "server_error"}})
                return
            choices = []
            for index, prompt in enumerate(prompts):
                assert prompt.startswith(USER) and prompt.endswith(ASSISTANT)
                if "no-answer" in prompt and shown_first(prompt) == "no-answer":
                    continue  # the server leaves this prompt out of its reply
                slot = "bad" if shown_first(prompt) == "bad" else "good"
                top = {t: math.log(p) for t, p in TOP_LOGPROBS[slot]}
                token = max(top, key=top.get)
                logprobs = {
                    "tokens": [token],
                    "token_logprobs": [top[token]],
                    "top_logprobs": [top],
                    "text_offset": [0],
                }
                choices.append(
                    {"index": index, "text": token, "logprobs": logprobs, "finish_reason": "length"}
                )
            self._send(
                200,
                {
                    "id": "cmpl-test",
                    "object": "text_completion",
                    "created": 0,
                    "model": model,
                    "choices": choices,
                },
            )

    return Handler


@pytest.fixture
def list_server():
    state = ListServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield state
    httpd.shutdown()
    httpd.server_close()


def lists_judge(base_url: str, model: str, **kwargs):
    from pipeline.judging.backends.openai_compat import OpenAICompatJudge

    kwargs.setdefault("retries", 0)
    config = JudgeConfig(backend="openai", model=model, base_url=base_url, **kwargs)
    return OpenAICompatJudge(config)


P_AB = 0.7 / 0.9  # "good" shown first: " A" 0.7 vs " B" 0.2
P_A_BA = 1 - 0.3 / 0.9  # "bad" shown first: A 0.3 vs B 0.6


def pairs(*kinds: str) -> list[PairInput]:
    """One pair per kind: kind "ok" is good vs bad; any other kind is put in response A."""
    return [
        PairInput(i, "Which is better?", "good" if kind == "ok" else kind, "bad")
        for i, kind in enumerate(kinds, start=1)
    ]


def test_many_prompts_per_request_both_orders_side_by_side(list_server, tiny_lm):
    judge = lists_judge(
        list_server.base_url, "flaky", tokenizer=str(tiny_lm), prompts_per_request=4
    )
    identity = judge.identity
    assert identity.confidence_kind == "logprob"
    assert identity.params["request_mode"] == "completions-prompt-lists"
    assert identity.params["chat_template"] == f"tokenizer:{tiny_lm}"
    rows = judge.judge(pairs("ok", "ok", "ok", "ok", "ok"))
    assert list_server.requests["flaky"] == 1 + 3  # the probe, then 2 + 2 + 1 pairs
    first_batch = list_server.prompt_lists[1]
    assert len(first_batch) == 4
    assert [shown_first(p) for p in first_batch] == ["good", "bad", "good", "bad"]
    assert [r.pair_id for r in rows] == [1, 2, 3, 4, 5]
    for row in rows:
        assert row.status == "ok" and row.label == "A"
        assert row.p_a_ab == pytest.approx(P_AB)
        assert row.p_a_ba == pytest.approx(P_A_BA)
        assert row.p_a == pytest.approx((P_AB + P_A_BA) / 2)


def test_a_500_on_one_batch_is_retried(list_server, tiny_lm):
    judge = lists_judge(
        list_server.base_url,
        "flaky",
        tokenizer=str(tiny_lm),
        prompts_per_request=2,
        retries=2,
        backoff_s=0.01,
    )
    rows = judge.judge(pairs("ok", "server-error", "ok"))
    assert list_server.requests["flaky"] == 1 + 3 + 1  # probe, 3 batches, 1 retry
    assert [r.status for r in rows] == ["ok", "ok", "ok"]
    assert rows[1].label == "A" and rows[1].p_a == pytest.approx((P_AB + P_A_BA) / 2)


def test_failures_are_recorded_per_pair_never_dropped(list_server, tiny_lm):
    judge = lists_judge(
        list_server.base_url, "lists", tokenizer=str(tiny_lm), prompts_per_request=4, retries=1
    )
    batch = pairs("ok", "no-answer", "server-error", "ok")
    rows = judge.judge(batch)
    assert [r.pair_id for r in rows] == [p.pair_id for p in batch]
    # First request: pair 1 ok, pair 2's A-first prompt missing from the reply.
    assert rows[0].status == "ok"
    assert rows[1].status == "failed" and "no logprobs" in rows[1].error
    # Second request: 500 twice (1 try + 1 retry): both of its pairs fail with the error.
    assert rows[2].status == rows[3].status == "failed"
    assert "InternalServerError after 2 attempts" in rows[3].error
    assert list_server.requests["lists"] == 1 + 1 + 2


def test_the_servers_tokenize_renders_the_template(list_server):
    judge = lists_judge(list_server.base_url, "tokenize", prompts_per_request=8)
    assert judge.identity.params["request_mode"] == "completions-prompt-lists"
    assert judge.identity.params["chat_template"] == "server:/tokenize"
    [row] = judge.judge([PAIR])
    assert row.status == "ok" and row.p_a == pytest.approx((P_AB + P_A_BA) / 2)


def test_a_server_without_prompt_lists_falls_back_to_chat(server, tiny_lm):  # noqa: F811
    judge = lists_judge(server.base_url, "logprob", tokenizer=str(tiny_lm))
    assert judge.identity.params["request_mode"] == "chat"
    assert judge.identity.params["chat_template"] == "server"
    [row] = judge.judge([PAIR])
    assert row.status == "ok" and row.p_a == pytest.approx((P_AB + P_A_BA) / 2)
    assert server.requests["logprob"] == 1 + 2  # the chat probe, then one request per order


def test_prompt_lists_never_keeps_chat(list_server, tiny_lm):
    from pipeline.errors import UserError

    # This server has no chat endpoint: with prompt lists off, the chat probe cannot reach it.
    with pytest.raises(UserError, match="cannot reach the judge server"):
        lists_judge(list_server.base_url, "lists", tokenizer=str(tiny_lm), prompt_lists="never")

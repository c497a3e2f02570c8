"""The OpenAI-compatible backend against a REAL HTTP server on loopback.

The server is a small test server written here (http.server), not `transformers serve`: its
replies follow the OpenAI chat-completions schema (choices[].message, choices[].logprobs.content
[].top_logprobs, error bodies), which is all the `openai` client reads. The judge under test is
unmodified and talks HTTP to it through the real `openai` client.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from db.models import JudgeVersion, Judgment, LabelAudit
from pipeline.judging.base import PairInput
from pipeline.judging.config import JudgeConfig
from tests.helpers.factories import make_pair

# What the server answers for the response shown FIRST (as "Response A").
TOP_LOGPROBS = {
    "good": [(" A", 0.7), (" B", 0.2), ("C", 0.1)],
    "bad": [("A", 0.3), ("B", 0.6), (" maybe", 0.1)],
}
SAMPLES = {"good": ["A", "Response A is better.", "B"], "bad": ["B", "I pick B", "neither"]}


class FakeOpenAI:
    """State shared with the handler: per-model behaviour and a request log."""

    def __init__(self):
        self.requests: Counter[str] = Counter()
        self.sample_counter: Counter[str] = Counter()
        self.broken = True  # "flaky" answers 500 until a test repairs it
        self.lock = threading.Lock()


def first_shown(body: dict) -> str:
    """ "bad" when the bad answer is shown as Response A; anything else (the probe) is "good"."""
    match = re.search(r"\[Response A\]\n(\w+)", body["messages"][-1]["content"])
    return "bad" if match and match.group(1) == "bad" else "good"


def make_handler(state: FakeOpenAI):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
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
            if not self.path.endswith("/chat/completions"):  # no /completions, no /tokenize
                self._send(404, {"error": {"message": "not found", "type": "not_found"}})
                return
            model = body["model"]
            with state.lock:
                state.requests[model] += 1
            if model == "slow":
                time.sleep(1.5)
            if model == "flaky" and state.broken or model == "error":
                self._send(500, {"error": {"message": "boom", "type": "server_error"}})
                return
            slot = (
                first_shown(body) if "[Response A]" in body["messages"][-1]["content"] else "good"
            )
            logprobs = None
            if model in ("logprob", "flaky") and body.get("logprobs"):
                top = [
                    {"token": t, "logprob": math.log(p), "bytes": None}
                    for t, p in TOP_LOGPROBS[slot]
                ]
                token = top[0]
                logprobs = {"content": [{**token, "top_logprobs": top}], "refusal": None}
                content = token["token"]
            else:
                with state.lock:
                    key = json.dumps(body["messages"])
                    index = state.sample_counter[key] % 3
                    state.sample_counter[key] += 1
                content = SAMPLES[slot][index]
            self._send(
                200,
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "logprobs": logprobs,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
                },
            )

    return Handler


@pytest.fixture
def server():
    state = FakeOpenAI()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield state
    httpd.shutdown()
    httpd.server_close()


PAIR = PairInput(7, "Which is better?", "good answer", "bad answer")


def judge_for(server, model: str, **kwargs):
    from pipeline.judging.backends.openai_compat import OpenAICompatJudge

    kwargs.setdefault("retries", 0)
    return OpenAICompatJudge(
        JudgeConfig(backend="openai", model=model, base_url=server.base_url, **kwargs)
    )


def test_logprob_path(server):
    judge = judge_for(server, "logprob")
    assert judge.identity.confidence_kind == "logprob"  # found by the start-up probe
    assert judge.identity.params["request_mode"] == "chat"  # the server has no /completions
    [row] = judge.judge([PAIR])
    p_ab = 0.7 / 0.9  # "good" shown first: " A" 0.7 vs " B" 0.2 (C is not a label)
    p_a_ba = 1 - 0.3 / 0.9  # "bad" shown first: A 0.3 vs B 0.6 -> good (second slot) 0.6/0.9
    assert row.status == "ok" and row.label == "A"
    assert row.p_a_ab == pytest.approx(p_ab)
    assert row.p_a_ba == pytest.approx(p_a_ba)
    assert row.p_a == pytest.approx((p_ab + p_a_ba) / 2)
    assert row.swap_inconsistent is False


def test_text_fallback_with_k_samples(server):
    judge = judge_for(server, "text", samples=3)
    assert judge.identity.confidence_kind == "sampled"  # the server sent no logprobs
    [row] = judge.judge([PAIR])
    # Good first: A, A, B -> 2/3. Bad first: B, B, (unparseable) -> P(first) 0 -> P(A) 1.
    assert row.p_a_ab == pytest.approx(2 / 3)
    assert row.p_a_ba == pytest.approx(1.0)
    assert row.p_a == pytest.approx(5 / 6) and row.label == "A"
    assert server.requests["text"] == 1 + 2 * 3  # probe + k samples per order


def test_timeout_is_retried_then_recorded_as_failed(server):
    judge = judge_for(server, "slow", logprobs="always", timeout_s=0.3, retries=1, backoff_s=0.01)
    started = time.perf_counter()
    [row] = judge.judge([PAIR])
    assert time.perf_counter() - started < 1.5  # the two orders ran concurrently
    assert row.status == "failed" and row.label is None
    assert "APITimeoutError after 2 attempts" in row.error
    assert server.requests["slow"] == 4  # 2 orders x (1 try + 1 retry)


def test_server_error_ends_failed_and_a_rerun_retries(server, session, monkeypatch):
    from pipeline.judging.runner import build_judge, label_pairs

    pair = make_pair(session, "q1", response_a="good answer", response_b="bad answer")
    session.commit()
    config = JudgeConfig(
        backend="openai",
        model="flaky",
        base_url=server.base_url,
        logprobs="always",
        retries=2,
        backoff_s=0.01,
    )
    report = label_pairs(build_judge(config), progress=False)
    assert report.counts == {"ok": 0, "invalid": 0, "failed": 1}
    assert server.requests["flaky"] == 2 * 3  # both orders, 3 attempts each
    session.expire_all()
    stored = session.scalar(select(Judgment))
    assert stored.status == "failed" and "InternalServerError" in stored.error
    version = session.scalar(select(JudgeVersion))
    assert version.confidence_kind == "logprob" and version.params["base_url"] == server.base_url

    server.broken = False  # the server recovers; the same command retries the failed pair
    report = label_pairs(build_judge(config), progress=False)
    assert report.counts["ok"] == 1
    session.expire_all()
    stored = session.scalar(select(Judgment))
    assert stored.pair_id == pair.id and stored.status == "ok" and stored.error is None
    assert stored.label == "A" and stored.p_a == pytest.approx((0.7 / 0.9 + 1 - 0.3 / 0.9) / 2)
    audit = session.scalar(select(LabelAudit))
    assert (audit.old_value, audit.new_value) == ("failed", "A")
    assert label_pairs(build_judge(config), progress=False).pending == 0


def test_parse_label_takes_the_first_label_word():
    from pipeline.judging.backends.openai_compat import parse_label

    labels = {"A": "A", "B": "B"}
    assert parse_label("Response B is better than A", labels) == "B"
    assert parse_label("Answer: A.", labels) == "A"
    assert parse_label("ABBA", labels) is None
    assert parse_label("1", {"A": "1", "B": "2"}) == "A"

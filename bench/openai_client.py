"""The openai judge client's own throughput: prompt lists against one chat request per order.

A stub OpenAI-compatible server that answers at once (a bare ASGI app under uvicorn, in its own
process on loopback) serves `/v1/completions` with prompt lists and `/v1/chat/completions`; the
judge (pipeline/judging/backends/openai_compat.py, unmodified) labels the same N HH-RLHF pairs
both ways:

(a) prompt lists: the chat template rendered locally with the bundled SmolLM2 tokenizer, both
    orders side by side, `--prompts-per-request` prompts per request;
(b) chat: one chat request per order (as before issue 15), `--chat-concurrency` in flight.

The time covers everything the client does (templating, HTTP, parsing, combining orders), not
the start-up probe. Methods are interleaved per repeat; medians. The last line is JSON.

    python bench/openai_client.py                  # 10,000 pairs, 3 repeats
    python bench/openai_client.py --pairs 2000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# 20 alternatives for the answer token, as a server sends with logprobs=20.
ALTERNATIVES = {" A": 0.55, " B": 0.30, "A": 0.05, "B": 0.04} | {f" t{i}": 0.003 for i in range(16)}
TOP = {token: math.log(p) for token, p in ALTERNATIVES.items()}


async def _read_body(receive) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def _completions(body: dict) -> dict:
    logprobs = {"tokens": [" A"], "token_logprobs": [TOP[" A"]], "top_logprobs": [TOP]}
    choices = [
        {"index": i, "text": " A", "logprobs": {**logprobs, "text_offset": [0]}}
        for i in range(len(body["prompt"]))
    ]
    return {"id": "c", "object": "text_completion", "created": 0, "model": "m", "choices": choices}


def _chat(body: dict) -> dict:
    top = [{"token": t, "logprob": lp, "bytes": None} for t, lp in list(TOP.items())[:10]]
    content = [{"token": " A", "logprob": TOP[" A"], "bytes": None, "top_logprobs": top}]
    message = {"role": "assistant", "content": " A"}
    choice = {"index": 0, "message": message, "logprobs": {"content": content}}
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]}


async def stub_app(scope, receive, send) -> None:
    """Answers at once: prompt lists on /v1/completions, one answer on /v1/chat/completions."""
    if scope["type"] != "http":
        return
    body = json.loads(await _read_body(receive) or b"{}")
    path = scope["path"]
    if path == "/v1/completions":
        status, payload = 200, _completions(body)
    elif path == "/v1/chat/completions":
        status, payload = 200, _chat(body)
    else:
        status, payload = 404, {"error": {"message": "not found", "type": "not_found"}}
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _serve(port: int) -> None:
    import uvicorn

    uvicorn.run(stub_app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_stub() -> tuple[multiprocessing.Process, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,))
    process.start()
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.terminate()
    raise SystemExit("the stub server did not start")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompts-per-request", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16, help="prompt-list requests")
    parser.add_argument("--chat-concurrency", type=int, default=64, help="chat requests")
    parser.add_argument(
        "--chat-pairs", type=int, default=0, help="(b) on the first N pairs only (0: all)"
    )
    args = parser.parse_args(argv)

    from bench.judge_throughput import load_pairs
    from pipeline.bundled_models import smollm2_path
    from pipeline.judging.backends.openai_compat import OpenAICompatJudge
    from pipeline.judging.config import JudgeConfig

    pairs = load_pairs(args.pairs)
    subsets = {"lists": pairs, "chat": pairs[: args.chat_pairs or len(pairs)]}
    process, port = start_stub()
    try:
        base = dict(backend="openai", model="stub", base_url=f"http://127.0.0.1:{port}/v1")
        judges = {
            "lists": OpenAICompatJudge(
                JudgeConfig(
                    **base,
                    tokenizer=str(smollm2_path()),
                    prompts_per_request=args.prompts_per_request,
                    concurrency=args.concurrency,
                )
            ),
            "chat": OpenAICompatJudge(
                JudgeConfig(**base, prompt_lists="never", concurrency=args.chat_concurrency)
            ),
        }
        assert judges["lists"].request_mode == "completions-prompt-lists"
        assert judges["chat"].request_mode == "chat"
        timings: dict[str, list[float]] = {name: [] for name in judges}
        for _ in range(args.repeats):
            for name, judge in judges.items():
                started = time.perf_counter()
                rows = judge.judge(subsets[name])
                timings[name].append(time.perf_counter() - started)
                assert len(rows) == len(subsets[name]) and all(r.status == "ok" for r in rows)
    finally:
        process.terminate()
        process.join()
    rate = {name: len(subsets[name]) / statistics.median(t) for name, t in timings.items()}
    requests = math.ceil(len(pairs) / (args.prompts_per_request // 2))
    print(
        f"{len(pairs)} HH-RLHF pairs x 2 orders against a loopback stub in its own process, "
        f"median of {args.repeats}"
    )
    print(
        f"  (a) prompt lists   {rate['lists']:9.0f} pairs/s  ({requests} requests of "
        f"{args.prompts_per_request} prompts, {args.concurrency} in flight)   runs (s): "
        + ", ".join(f"{t:.2f}" for t in timings["lists"])
    )
    print(
        f"  (b) chat per order {rate['chat']:9.0f} pairs/s  ({2 * len(subsets['chat'])} requests, "
        f"{args.chat_concurrency} in flight)   runs (s): "
        + ", ".join(f"{t:.2f}" for t in timings["chat"])
    )
    result = {
        "pairs": len(pairs),
        "lists_pairs_per_s": round(rate["lists"], 1),
        "chat_pairs_per_s": round(rate["chat"], 1),
        "chat_pairs": len(subsets["chat"]),
        "ratio_lists_vs_chat": round(rate["lists"] / rate["chat"], 2),
        "prompts_per_request": args.prompts_per_request,
        "concurrency": args.concurrency,
        "chat_concurrency": args.chat_concurrency,
        "repeats": args.repeats,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

"""Entry point run by the argilla-server virtualenv's python (not the workbench's).

    <argilla venv>/bin/python launch.py server --host 127.0.0.1 --port 6900
    <argilla venv>/bin/python launch.py worker

Both import our SQL search engine first, so that it is registered before argilla-server looks
up ARGILLA_SEARCH_ENGINE: the web app when it starts, the worker when it runs a job.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sql_search_engine  # noqa: E402,F401  (registers the engine)


def run_server(host: str, port: int) -> None:
    import uvicorn

    uvicorn.run("argilla_server._app:app", host=host, port=port, access_log=False)


def run_worker() -> None:
    from argilla_server.jobs.queues import DEFAULT_QUEUE, HIGH_QUEUE, REDIS_CONNECTION
    from rq import Worker

    # One worker in this process: the engine registered above is visible to every job.
    Worker([HIGH_QUEUE, DEFAULT_QUEUE], connection=REDIS_CONNECTION).work(with_scheduler=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser("server")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=6900)
    sub.add_parser("worker")
    args = parser.parse_args()
    if args.command == "server":
        run_server(args.host, args.port)
    else:
        run_worker()


if __name__ == "__main__":
    main()

"""Start and stop a local argilla-server without Docker (tests, the README demo).

    python -m pipeline.argilla.local_server start [--home DIR] [--port N] [--print-env]
    python -m pipeline.argilla.local_server stop [--home DIR]

argilla-server 2.8.0 pins old fastapi/pydantic/typer, so it lives in a virtualenv of its own
(created once and reused; RLAIF_ARGILLA_VENV moves it, e.g. to a CI cache). Its data, logs, the
credentials and the process ids live under RLAIF_ARGILLA_HOME (default $RLAIF_HOME/argilla-server).
Redis is Debian's redis-server on loopback; the search engine is ours (sql_search_engine.py), so
no Elasticsearch is needed. Production uses Elasticsearch via docker-compose.yml.

Standard library only: this module runs in the workbench's virtualenv and starts processes in
the other one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.settings import get_settings

ARGILLA_SERVER_VERSION = "2.8.0"
# click 8.2 broke the typer that argilla-server pins: its CLI fails without this bound.
REQUIREMENTS = (f"argilla-server=={ARGILLA_SERVER_VERSION}", "click<8.2")
ENGINE_NAME = "rlaif-sql"  # must match sql_search_engine.ENGINE_NAME
WORKSPACE = "rlaif"
LAUNCHER = Path(__file__).resolve().parent / "server_plugin" / "launch.py"


class ServerError(RuntimeError):
    """The local server could not be installed or started; the message says where to look."""


@dataclass
class ServerInfo:
    url: str
    workspace: str
    owner_username: str
    owner_password: str
    owner_api_key: str
    annotator_username: str
    annotator_password: str
    annotator_api_key: str
    home: str
    pids: dict[str, int] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """What the workbench (and the tests) need to talk to this server."""
        return {
            "ARGILLA_API_URL": self.url,
            "ARGILLA_API_KEY": self.owner_api_key,
            "ARGILLA_WORKSPACE": self.workspace,
            "RLAIF_ARGILLA_ANNOTATOR": self.annotator_username,
            "RLAIF_ARGILLA_ANNOTATOR_API_KEY": self.annotator_api_key,
        }


def server_home() -> Path:
    explicit = get_settings().argilla_home
    if explicit:
        return explicit
    from db.session import rlaif_home

    return rlaif_home() / "argilla-server"


def venv_dir(home: Path) -> Path:
    return get_settings().argilla_venv or home / "venv"


def ensure_venv(venv: Path, log=print) -> Path:
    """The argilla-server virtualenv, installed on first use; returns its python."""
    python = venv / "bin" / "python"
    stamp = venv / f".rlaif-argilla-server-{ARGILLA_SERVER_VERSION}"
    if python.exists() and stamp.exists():
        return python
    log(f"Installing argilla-server {ARGILLA_SERVER_VERSION} into {venv} (about a minute)...")
    base_python = getattr(sys, "_base_executable", None) or shutil.which("python3") or "python3"
    subprocess.run([base_python, "-m", "venv", "--clear", str(venv)], check=True)
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ServerError(f"pip could not install argilla-server:\n{result.stderr[-2000:]}")
    stamp.touch()
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def server_ready(url: str, api_key: str, timeout: float = 2.0) -> bool:
    request = urllib.request.Request(f"{url}/api/v1/me", headers={"X-Argilla-Api-Key": api_key})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait(check, seconds: float, what: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        if process.poll() is not None:
            break
        time.sleep(0.3)
    tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
    raise ServerError(f"{what} did not start (log: {log_path}):\n{tail}")


def _credentials(home: Path) -> dict[str, str]:
    """Generated once per server home, then reused: the users already exist in its database."""
    path = home / "credentials.json"
    if path.exists():
        return json.loads(path.read_text())
    credentials = {
        "owner_username": "rlaif-owner",
        "owner_password": secrets.token_urlsafe(12),
        "owner_api_key": "rlaif.owner." + secrets.token_urlsafe(24),
        "annotator_username": "annotator",
        "annotator_password": secrets.token_urlsafe(12),
        "annotator_api_key": "rlaif.annotator." + secrets.token_urlsafe(24),
    }
    path.write_text(json.dumps(credentials, indent=2))
    path.chmod(0o600)
    return credentials


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def running(home: Path | None = None) -> ServerInfo | None:
    """The server started from `home`, if it is up and answering."""
    home = home or server_home()
    state = home / "state.json"
    if not state.exists():
        return None
    info = ServerInfo(**json.loads(state.read_text()))
    if all(_alive(pid) for pid in info.pids.values()) and server_ready(
        info.url, info.owner_api_key
    ):
        return info
    return None


def start(home: Path | None = None, port: int = 6900, log=print) -> ServerInfo:
    """Install (once), then start redis, argilla-server and its worker; idempotent."""
    home = (home or server_home()).resolve()
    home.mkdir(parents=True, exist_ok=True)
    info = running(home)
    if info:
        return info
    stop(home)  # leftovers of a crashed run
    python = ensure_venv(venv_dir(home), log=log)
    if _port_open(port):
        raise ServerError(f"port {port} on 127.0.0.1 is taken; choose another with --port")
    (home / "logs").mkdir(exist_ok=True)
    (home / "redis").mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    pids: dict[str, int] = {}
    try:
        credentials = _launch(python, home, port, pids)
    except BaseException:
        _terminate(pids)
        raise
    info = ServerInfo(url=url, workspace=WORKSPACE, home=str(home), pids=pids, **credentials)
    (home / "state.json").write_text(json.dumps(asdict(info), indent=2))
    return info


def _child_env(home: Path, redis_port: int) -> dict[str, str]:
    """Our environment without Argilla's or Python's settings, plus the server's own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ARGILLA_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        ARGILLA_HOME_PATH=str(home / "data"),
        ARGILLA_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        ARGILLA_SEARCH_ENGINE=ENGINE_NAME,
        ARGILLA_ENABLE_TELEMETRY="0",
        HF_HUB_OFFLINE="1",
    )
    return env


def _launch(python: Path, home: Path, port: int, pids: dict[str, int]) -> dict[str, str]:
    """Start redis, set up the database and users, start the server and the worker; each
    started process goes into `pids` (the caller stops them if this fails). The credentials."""
    redis_port = free_port()
    env = _child_env(home, redis_port)

    def spawn(name: str, argv: list[str]) -> subprocess.Popen:
        log_file = open(home / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (child keeps it)
        process = subprocess.Popen(
            argv, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        pids[name] = process.pid
        return process

    redis_bin = shutil.which("redis-server") or "/usr/bin/redis-server"
    redis = spawn(
        "redis",
        [redis_bin, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", ""]
        + ["--appendonly", "no", "--dir", str(home / "redis")],
    )
    _wait(lambda: _redis_ping(redis_port), 20, "redis-server", redis, home / "logs/redis.log")
    credentials = _set_up_database(python, env, home)
    server = spawn(
        "server",
        [str(python), str(LAUNCHER), "server", "--host", "127.0.0.1", "--port", str(port)],
    )
    spawn("worker", [str(python), str(LAUNCHER), "worker"])
    _wait(
        lambda: server_ready(f"http://127.0.0.1:{port}", credentials["owner_api_key"]),
        120,
        "argilla-server",
        server,
        home / "logs/server.log",
    )
    return credentials


def _set_up_database(python: Path, env: dict[str, str], home: Path) -> dict[str, str]:
    """Migrate argilla-server's database and create the owner and the annotator (once)."""
    cli = [str(python), "-m", "argilla_server", "database"]
    _run(cli + ["migrate"], env, home)
    credentials = _credentials(home)
    users_marker = home / "data" / ".rlaif-users-created"
    for role in () if users_marker.exists() else ("owner", "annotator"):
        _run(
            cli
            + ["users", "create", "--first-name", role.title()]
            + ["--username", credentials[f"{role}_username"]]
            + ["--password", credentials[f"{role}_password"]]
            + ["--api-key", credentials[f"{role}_api_key"]]
            + ["--role", role, "--workspace", WORKSPACE],
            env,
            home,
        )
    users_marker.touch()
    return credentials


def _run(argv: list[str], env: dict[str, str], home: Path) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    with open(home / "logs" / "setup.log", "a") as log_file:
        log_file.write(f"$ {' '.join(argv[:6])} ...\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        output = (result.stderr or result.stdout)[-2000:]
        raise ServerError(f"{' '.join(argv[2:5])} failed:\n{output}")


def _terminate(pids: dict[str, int]) -> None:
    # Each process leads its own session (start_new_session): signal the group, so that
    # uvicorn's and rq's children go too. Worker and server first, redis last.
    order = sorted(pids.items(), key=lambda item: item[0] == "redis")
    for _, pid in order:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for _, pid in order:
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(home: Path | None = None) -> bool:
    """Stop what `start` started from `home`. Returns False when nothing was running."""
    home = home or server_home()
    state = home / "state.json"
    if not state.exists():
        return False
    pids = json.loads(state.read_text()).get("pids", {})
    _terminate(pids)
    state.unlink(missing_ok=True)
    return True


def describe(info: ServerInfo) -> str:
    return "\n".join(
        [
            f"Argilla is running at {info.url}  (data, logs: {info.home})",
            f"  owner:     {info.owner_username} / {info.owner_password}",
            f"             API key {info.owner_api_key}",
            f"  annotator: {info.annotator_username} / {info.annotator_password}",
            f"             API key {info.annotator_api_key}",
            f"  workspace: {info.workspace}",
            "For the workbench:",
            *(f"  export {key}={value}" for key, value in info.env().items()),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local argilla-server (no Docker).")
    sub = parser.add_subparsers(dest="command", required=True)
    start_parser = sub.add_parser("start")
    start_parser.add_argument("--home", type=Path)
    start_parser.add_argument("--port", type=int, default=6900)
    start_parser.add_argument(
        "--print-env", action="store_true", help="print only `export` lines, for eval in shell"
    )
    start_parser.add_argument(
        "--print-test-env", action="store_true", help="`export` lines for the test suite"
    )
    stop_parser = sub.add_parser("stop")
    stop_parser.add_argument("--home", type=Path)
    args = parser.parse_args(argv)
    if args.command == "stop":
        print("stopped" if stop(args.home) else "nothing was running")
        return 0
    try:
        info = start(args.home, args.port, log=lambda m: print(m, file=sys.stderr))
    except ServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.print_test_env:
        test_env = {
            "RLAIF_TEST_ARGILLA_URL": info.url,
            "RLAIF_TEST_ARGILLA_API_KEY": info.owner_api_key,
            "RLAIF_TEST_ARGILLA_ANNOTATOR": info.annotator_username,
            "RLAIF_TEST_ARGILLA_ANNOTATOR_API_KEY": info.annotator_api_key,
        }
        print("\n".join(f"export {k}={v}" for k, v in test_env.items()))
    elif args.print_env:
        print("\n".join(f"export {k}={v}" for k, v in info.env().items()))
    else:
        print(describe(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())

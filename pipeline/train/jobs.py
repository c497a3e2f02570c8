"""Training jobs: one TrainingJob row per run, run in a process group of its own.

    start_job  -> row 'queued', folder runs/<kind>-job<id>-<stamp>/ (config.yaml, train.log,
                  output/), then `python -m pipeline.train.jobs <id>` with start_new_session=True:
                  the supervisor outlives the app (a restart does not kill it) and is the leader
                  of the group that `cancel_job` signals.
    supervisor -> 'running', runs the trainer module as its child, then 'succeeded' (artifacts
                  and metrics from output/result.json) or 'failed' (exit code + the log's tail).
    trainer    -> streams every logged number into JobMetric (common.db_metrics_callback).

What the Training page and `rlaif jobs` read about runs is in runs.py.

This module imports no torch/transformers: the CLI and the app import it.
"""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.enums import ACTIVE_JOB_STATUSES, JobStatus
from db.models import JobMetric, Snapshot, TrainingJob, utcnow
from db.session import database_url, rlaif_home, session_scope
from pipeline.auth import users as auth
from pipeline.errors import UserError

KINDS = ("reward", "ppo", "evaluate")
MODULES = {
    "reward": "pipeline.train.reward",
    "ppo": "pipeline.train.ppo",
    "evaluate": "pipeline.evaluation.evaluate_job",
}
LOG_TAIL_CHARS = 4000


def config_class(kind: str):
    if kind == "reward":
        from pipeline.train.reward_config import RewardRunConfig

        return RewardRunConfig
    if kind == "ppo":
        from pipeline.train.ppo_config import PpoRunConfig

        return PpoRunConfig
    if kind == "evaluate":
        from pipeline.evaluation.evaluate_job import EvaluateRunConfig

        return EvaluateRunConfig
    raise UserError(f"unknown job kind {kind!r}: expected one of {', '.join(KINDS)}")


def validate_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config with defaults filled in; unknown or bad fields are a UserError."""
    cls = config_class(kind)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise UserError(f"unknown {kind} setting(s): {', '.join(unknown)}")
    try:
        return cls(**config).to_dict()
    except (TypeError, ValueError) as error:
        raise UserError(f"bad {kind} config: {error}") from None


def _acting_name(session: Session, user: auth.AuthUser | None, operator: str | None) -> str:
    """Admins start and cancel runs. The CLI runs as the local operator (who owns the machine
    and the database anyway); the app always passes the signed-in user, checked here."""
    if user is not None:
        return auth.authorize(session, user, "admin").username
    if operator:
        return operator
    raise PermissionError("not signed in")


def cli_operator() -> str:
    return f"cli:{getpass.getuser()}"


def _snapshot_id(session: Session, snapshot: str | None) -> str | None:
    if not snapshot:
        return None
    if session.get(Snapshot, snapshot) is not None:
        return snapshot
    manifest = Path(snapshot).expanduser() / "snapshot.json"
    if manifest.is_file():
        found = json.loads(manifest.read_text()).get("id")
        if found and session.get(Snapshot, found) is not None:
            return found
    return None


def _parent_job(session: Session, reward_model: str | None) -> int | None:
    """The reward job whose saved model a PPO run uses: the lineage link policy -> RM."""
    if not reward_model:
        return None
    wanted = str(Path(reward_model).expanduser().resolve())
    for job in session.scalars(select(TrainingJob).where(TrainingJob.kind == "reward")):
        model = (job.artifacts or {}).get("model")
        if model and str(Path(model).resolve()) == wanted:
            return job.id
    return None


def start_job(
    kind: str,
    config: dict[str, Any],
    *,
    user: auth.AuthUser | None = None,
    operator: str | None = None,
    url: str | None = None,
) -> int:
    """Record and launch one run; returns the job id. Admin only (PermissionError)."""
    url = url or database_url()
    config = validate_config(kind, dict(config))
    with session_scope(url) as session:
        created_by = _acting_name(session, user, operator)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        job = TrainingJob(kind=kind, status=JobStatus.QUEUED, config=config, created_by=created_by)
        job.snapshot_id = _snapshot_id(session, config.get("snapshot"))
        # The lineage link: a PPO run -> its reward model's run; an evaluation -> its policy's.
        job.parent_job_id = _parent_job(session, config.get("reward_model")) or config.get(
            "policy_job_id"
        )
        session.add(job)
        session.flush()
        job_dir = rlaif_home() / "runs" / f"{kind}-job{job.id}-{stamp}"
        job_dir.mkdir(parents=True, exist_ok=False)
        output = Path(config["output_dir"]).expanduser() if config.get("output_dir") else None
        output = output or job_dir / "output"
        if output.exists() and any(output.iterdir()):
            raise UserError(f"{output}: output folder is not empty; another run wrote there")
        clash = session.scalar(select(TrainingJob.id).where(TrainingJob.output_dir == str(output)))
        if clash is not None:
            raise UserError(f"{output}: job {clash} already writes there; pick another folder")
        config = {**config, "output_dir": str(output), "job_id": job.id}
        job.config, job.output_dir = config, str(output)
        job.log_path = str(job_dir / "train.log")
        _write_yaml(job_dir / "config.yaml", config)
        job_id = job.id
    _spawn_supervisor(job_id, Path(job_dir), url)
    return job_id


def _write_yaml(path: Path, config: dict[str, Any]) -> None:
    import yaml

    path.write_text(yaml.safe_dump({k: v for k, v in config.items() if v is not None}))


def _spawn_supervisor(job_id: int, job_dir: Path, url: str) -> None:
    env = {**os.environ, "RLAIF_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with open(job_dir / "train.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.train.jobs", str(job_id)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(job_dir),
            env=env,
            start_new_session=True,  # its own process group: survives the app, cancellable
        )
    with session_scope(url) as session:
        session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(pid=process.pid))
    # Reap it when it ends, so no zombie keeps its process group looking alive.
    threading.Thread(target=process.wait, daemon=True).start()


def _group_alive(pgid: int | None) -> bool:
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def log_tail(path: str | None, chars: int = LOG_TAIL_CHARS) -> str:
    if not path or not Path(path).is_file():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - chars))
        return handle.read().decode("utf-8", errors="replace")


def cancel_job(
    job_id: int,
    *,
    user: auth.AuthUser | None = None,
    operator: str | None = None,
    url: str | None = None,
    grace_s: float = 10.0,
) -> str:
    """Stop a queued or running job: mark it cancelled, then SIGTERM (later SIGKILL) its group."""
    with session_scope(url) as session:
        actor = _acting_name(session, user, operator)
        job = session.get(TrainingJob, job_id)
        if job is None:
            raise UserError(f"no training job {job_id}")
        values = dict(status=JobStatus.CANCELLED, ended_at=utcnow(), error=f"cancelled by {actor}")
        if not _set_if(session, job_id, ACTIVE_JOB_STATUSES, values):
            session.refresh(job)
            raise UserError(f"job {job_id} is already {job.status}")
        pid = job.pid
    if pid and _group_alive(pid):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    return JobStatus.CANCELLED


def reconcile(session: Session) -> None:
    """A 'running' job whose process group is gone (machine restart, kill -9) is failed.
    Jobs run on the host that started them, where this check is meaningful."""
    running = select(TrainingJob).where(TrainingJob.status == JobStatus.RUNNING)
    for job in session.scalars(running).all():
        if not _group_alive(job.pid):
            error = "the job's process disappeared\n" + log_tail(job.log_path)
            values = dict(status=JobStatus.FAILED, ended_at=utcnow(), error=error)
            _set_if(session, job.id, [JobStatus.RUNNING], values)
            session.expire(job)


def _set_if(session: Session, job_id: int, statuses, values: dict[str, Any]) -> bool:
    """Write `values` to the job only while its status is one of `statuses`, in one UPDATE:
    the page (cancel, reconcile) and the supervisor (finish) may race, and the first to end
    a job wins (a cancel is never turned into "failed" by a check made before it)."""
    done = session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.status.in_(list(statuses)))
        .values(**values),
        execution_options={"synchronize_session": False},
    )
    return done.rowcount == 1


def record_metrics(job_id: int, step: int, values: dict[str, float]) -> None:
    if not values:
        return
    with session_scope() as session:
        session.add_all(
            JobMetric(job_id=job_id, step=int(step), name=name[:128], value=value)
            for name, value in values.items()
        )


def accelerate_command(
    kind: str, config_path: str, num_processes: int = 2, config: str = "multi_gpu"
) -> str:
    """The same run as `num_processes` data-parallel processes, with one of TRL's accelerate
    configs: multi_gpu (DDP; without CUDA the scripts run it on the CPU, MULTI_CPU with gloo,
    tests/train/test_train_multiprocess.py), or zero2 / zero3 (DeepSpeed ZeRO; needs `pip install
    deepspeed`, which the project does not install)."""
    spec = importlib.util.find_spec("trl")
    base = Path(next(iter(spec.submodule_search_locations))) if spec else Path("trl")
    accel = base / "accelerate_configs" / f"{config}.yaml"
    return (
        f"accelerate launch --config_file {accel} --num_processes {num_processes} "
        f"-m {MODULES[kind]} --config {config_path}"
    )


# --- the supervisor process -------------------------------------------------------------------


def _finish(job_id: int, returncode: int) -> None:
    with session_scope() as session:
        job = session.get(TrainingJob, job_id)
        if job is None or job.status != JobStatus.RUNNING:
            return  # cancelled meanwhile: keep that
        result_path = Path(job.output_dir or "") / "result.json"
        if returncode == 0 and result_path.is_file():
            result = json.loads(result_path.read_text())
            values = dict(
                status=JobStatus.SUCCEEDED,
                artifacts=result.get("artifacts", {}),
                final_metrics=result.get("metrics", {}),
            )
        else:
            why = f"exit code {returncode}" if returncode else "no result.json written"
            values = dict(status=JobStatus.FAILED, error=f"{why}\n{log_tail(job.log_path)}")
        _set_if(session, job_id, [JobStatus.RUNNING], values | {"ended_at": utcnow()})


def supervise(job_id: int) -> int:
    with session_scope() as session:
        claimed = session.execute(
            update(TrainingJob)
            .where(TrainingJob.id == job_id, TrainingJob.status == JobStatus.QUEUED)
            .values(status=JobStatus.RUNNING, started_at=utcnow(), pid=os.getpgrp())
        ).rowcount
        job = session.get(TrainingJob, job_id)
        kind, log_path = job.kind, job.log_path
    if not claimed:
        return 0
    config_path = Path(log_path).parent / "config.yaml"
    print(f"[job {job_id}] {kind} run, config {config_path}", flush=True)
    try:
        child = subprocess.run([sys.executable, "-m", MODULES[kind], "--config", str(config_path)])
        returncode = child.returncode
    except Exception as error:  # the interpreter itself could not start: still record it
        print(f"[job {job_id}] could not start: {error}", flush=True)
        returncode = 1
    print(f"[job {job_id}] exited with {returncode}", flush=True)
    _finish(job_id, returncode)
    return returncode


if __name__ == "__main__":
    sys.exit(supervise(int(sys.argv[1])))

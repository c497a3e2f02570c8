"""`rlaif train reward|ppo` and `rlaif jobs list|show|cancel`.

Every run is a TrainingJob: it runs in a process group of its own (see pipeline/train/jobs.py).
`rlaif train ...` follows the log until the run ends (Ctrl-C detaches; the run goes on);
`--detach` returns at once with the job id. The options of `rlaif train <kind>` are made from
the run config's fields (pipeline/train/config.py), so a setting is declared once.
"""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from db.enums import ACTIVE_JOB_STATUSES, JobStatus
from pipeline.commands.common import user_errors
from pipeline.errors import UserError
from pipeline.train.ppo_config import PpoRunConfig
from pipeline.train.reward_config import RewardRunConfig

KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY

train_app = typer.Typer(help="Train a reward model or a PPO policy on an export snapshot.")
jobs_app = typer.Typer(help="Training jobs: list, show, cancel.")
cli = typer.Typer()
cli.add_typer(train_app, name="train")
cli.add_typer(jobs_app, name="jobs")


def _start(kind: str, config_file: Path | None, flags: dict[str, Any], detach: bool) -> None:
    from pipeline.train import jobs
    from pipeline.train.config import load_yaml

    config = {**load_yaml(config_file), **{k: v for k, v in flags.items() if v is not None}}
    try:
        job_id = jobs.start_job(kind, config, operator=jobs.cli_operator())
    except PermissionError as error:
        raise UserError(str(error)) from None
    typer.echo(f"job {job_id} started ({kind}); `rlaif jobs show {job_id}` for its progress")
    if not detach:
        raise typer.Exit(_follow(job_id))


def _follow(job_id: int) -> int:
    """Print the log as it grows until the job ends; the exit status says how it ended."""
    from db.models import TrainingJob
    from db.session import session_scope

    offset = 0
    try:
        while True:
            with session_scope() as session:
                job = session.get(TrainingJob, job_id)
                status, log_path = job.status, job.log_path
            if log_path and Path(log_path).is_file():
                with open(log_path, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                    offset += len(chunk)
                typer.echo(chunk.decode("utf-8", errors="replace"), nl=False)
            if status not in ACTIVE_JOB_STATUSES:
                typer.echo(f"job {job_id}: {status}")
                return 0 if status == JobStatus.SUCCEEDED else 1
            time.sleep(1.0)
    except KeyboardInterrupt:
        typer.echo(f"\ndetached; job {job_id} goes on (rlaif jobs cancel {job_id} stops it)")
        return 0


def _field_option(cls: type, item) -> inspect.Parameter:
    """`--field-name` (and its older names) for one config field; None means "not given"."""
    from pipeline.train.config import base_type, field_types, flag_names

    kind = base_type(field_types(cls)[item.name])
    names = flag_names(item)
    if kind is bool:  # --flag / --no-flag: either may override the config file
        names = tuple(f"{name}/--no-{name[2:]}" for name in names)
    option = typer.Option(*names, help=item.metadata.get("help"), show_default=False)
    annotation = Annotated[kind | None, option]
    return inspect.Parameter(item.name, KEYWORD_ONLY, default=None, annotation=annotation)


def _run_command(kind: str, cls: type, summary: str) -> None:
    """Register `rlaif train <kind>`: --config, one option per config field, --detach."""
    from pipeline.train.config import cli_fields

    def command(config: Path | None = None, detach: bool = False, **flags: Any) -> None:
        with user_errors():
            _start(kind, config, flags, detach)

    help_config = f"YAML file of {cls.__name__} fields; flags win over it."
    params = [
        inspect.Parameter(
            "config",
            KEYWORD_ONLY,
            default=None,
            annotation=Annotated[Path | None, typer.Option("--config", help=help_config)],
        ),
        *(_field_option(cls, item) for item in cli_fields(cls)),
        inspect.Parameter(
            "detach",
            KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool, typer.Option("--detach", help="Return at once; the run goes on.")
            ],
        ),
    ]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = summary
    train_app.command(kind)(command)


_run_command(
    "reward", RewardRunConfig, "Train a reward model with TRL's RewardTrainer (runs as a job)."
)
_run_command(
    "ppo",
    PpoRunConfig,
    "Train the policy with PPO against a reward model, or the judge's direct score (d-RLAIF).",
)


def _job_dict(session, job, with_details: bool = False) -> dict[str, Any]:
    from pipeline.train import jobs, runs

    data = {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "created_by": job.created_by,
        "created_at": str(job.created_at),
        "started_at": str(job.started_at) if job.started_at else None,
        "ended_at": str(job.ended_at) if job.ended_at else None,
        "snapshot_id": job.snapshot_id,
        "parent_job_id": job.parent_job_id,
        "output_dir": job.output_dir,
        "log_path": job.log_path,
        "artifacts": job.artifacts,
        "final_metrics": job.final_metrics,
    }
    if with_details:
        latest: dict[str, tuple[int, float]] = {}
        for step, name, value in runs.metric_rows(session, job.id):
            latest[name] = (step, value)
        data["config"] = job.config
        data["latest_metrics"] = {k: {"step": s, "value": v} for k, (s, v) in latest.items()}
        data["lineage"] = runs.lineage(session, job)
        data["error"] = job.error
        config_path = str(Path(job.log_path).parent / "config.yaml") if job.log_path else ""
        data["accelerate_command"] = jobs.accelerate_command(job.kind, config_path)
    return data


@jobs_app.command("list")
def jobs_list(
    limit: int = typer.Option(50, help="Newest N jobs."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Training jobs, newest first."""
    with user_errors():
        from db.session import session_scope
        from pipeline.train import runs

        with session_scope() as session:
            rows = [_job_dict(session, job) for job in runs.list_jobs(session, limit)]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            typer.echo("no training jobs yet")
        for row in rows:
            acc = row["final_metrics"].get("heldout_accuracy")
            extra = f"  held-out acc {acc:.3f}" if isinstance(acc, float) else ""
            typer.echo(
                f"{row['id']:>4}  {row['kind']:<6} {row['status']:<10} {row['created_at'][:19]}"
                f"  {row['created_by']}{extra}"
            )


@jobs_app.command("show")
def jobs_show(
    job_id: int = typer.Argument(..., help="Job id."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """A job's config, status, latest metrics, lineage and the tail of its log."""
    with user_errors():
        from db.models import TrainingJob
        from db.session import session_scope
        from pipeline.train import jobs

        with session_scope() as session:
            jobs.reconcile(session)
            job = session.get(TrainingJob, job_id)
            if job is None:
                raise UserError(f"no training job {job_id}")
            data = _job_dict(session, job, with_details=True)
        if as_json:
            typer.echo(json.dumps(data, indent=2, default=str))
            return
        typer.echo(f"job {data['id']} ({data['kind']}): {data['status']}")
        for key in ("created_by", "started_at", "ended_at", "output_dir", "log_path"):
            typer.echo(f"  {key}: {data[key]}")
        typer.echo("  lineage:\n    " + "\n    ".join(data["lineage"]))
        for name, entry in sorted(data["latest_metrics"].items()):
            typer.echo(f"  {name} = {entry['value']:.5g} (step {entry['step']})")
        typer.echo(f"  multi-GPU: {data['accelerate_command']}")
        if data["error"]:
            typer.echo(f"  error: {data['error']}")
        tail = jobs.log_tail(data["log_path"], 1500)
        if tail:
            typer.echo("--- log tail ---\n" + tail)


@jobs_app.command("cancel")
def jobs_cancel(job_id: int = typer.Argument(..., help="Job id.")) -> None:
    """Stop a queued or running job (its whole process group)."""
    with user_errors():
        from pipeline.train import jobs

        jobs.cancel_job(job_id, operator=jobs.cli_operator())
        typer.echo(f"job {job_id} cancelled")

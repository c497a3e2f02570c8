"""`rlaif argilla push|pull|sync|serve|stop`: AI labels to Argilla, human answers back.

argilla itself is imported inside the commands (pipeline/argilla/), so that `rlaif --help`
stays fast and everything else works without Argilla configured.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from pipeline.commands.common import user_errors
from pipeline.errors import UserError

cli = typer.Typer()
argilla_app = typer.Typer(
    help="Argilla: AI labels as suggestions, human answers back (ARGILLA_API_URL/_API_KEY).",
    no_args_is_help=True,
)
cli.add_typer(argilla_app, name="argilla")

JudgeOption = typer.Option(None, "--judge", help="Judge version name (default: the newest).")
QueueOption = typer.Option(False, "--only-queue", help="Only pairs still waiting for human labels.")
DatasetOption = typer.Option(None, "--dataset", help="Argilla dataset (env ARGILLA_DATASET).")
FullOption = typer.Option(
    False, "--full", help="Send every record, not only those changed since the last push."
)
WorkspaceOption = typer.Option(
    None, "--workspace", help="Argilla workspace (env ARGILLA_WORKSPACE)."
)


def _config(dataset: str | None, workspace: str | None):
    from pipeline.argilla.config import ArgillaConfig

    return ArgillaConfig.from_env(dataset=dataset, workspace=workspace).require_server()


def _run(action: str, dataset: str | None, workspace: str | None, **options) -> None:
    """pipeline.argilla.sync.run (push, pull or sync), then what it did."""
    with user_errors():
        from pipeline.argilla import sync

        config = _config(dataset, workspace)
        _report(sync.run(action, config, **options), config)


def _report(result, config) -> None:
    lines = []
    if result.pushed or result.unchanged or result.judge is not None:
        lines.append(
            f"pushed {result.pushed} records to {config.workspace}/{config.dataset} "
            f"({result.with_suggestion} with a suggestion from {result.judge or 'no judge'}; "
            f"{result.unchanged} unchanged since the last push, not sent again)"
        )
    if result.responses_seen:
        lines.append(
            f"pulled {result.labels_new} new and {result.labels_changed} changed human labels "
            f"from {result.responses_seen} answers ({result.ignored} drafts/discarded ignored, "
            f"{result.labels_withdrawn} earlier labels withdrawn)"
        )
    if result.unknown_records:
        lines.append(f"{len(result.unknown_records)} records match no pair in this database")
    typer.echo("\n".join(lines) or "nothing to do")


def _push_command(action: str, doc: str):
    """`push` and `sync` take the same options."""

    def command(
        judge: str | None = JudgeOption,
        only_queue: bool = QueueOption,
        full: bool = FullOption,
        dataset: str | None = DatasetOption,
        workspace: str | None = WorkspaceOption,
    ) -> None:
        _run(action, dataset, workspace, judge=judge, only_queue=only_queue, full=full)

    command.__doc__ = doc
    return command


push_cmd = argilla_app.command("push")(
    _push_command(
        "push",
        "Create or update the Argilla dataset: one record per pair, the AI label as suggestion.",
    )
)


@argilla_app.command("pull")
def pull_cmd(dataset: str | None = DatasetOption, workspace: str | None = WorkspaceOption) -> None:
    """Read submitted Argilla responses back as human labels (idempotent)."""
    _run("pull", dataset, workspace)


sync_cmd = argilla_app.command("sync")(_push_command("sync", "Push, then pull."))


@argilla_app.command("serve")
def serve_cmd(
    port: int = typer.Option(6900, help="Port on 127.0.0.1."),
    home: Path | None = typer.Option(
        None, help="Data, logs and credentials (default $RLAIF_HOME/argilla-server)."
    ),
    foreground: bool = typer.Option(
        False, "--foreground", help="Stay attached; Ctrl-C stops the server."
    ),
) -> None:
    """Start a local argilla-server (no Docker) and print its URL and credentials.

    It has its own virtualenv, Debian's redis-server and a small SQL search engine of ours;
    production uses Elasticsearch via docker-compose.yml."""
    from pipeline.argilla import local_server as manager

    with user_errors():
        try:
            info = manager.start(home, port, log=lambda m: typer.echo(m, err=True))
        except manager.ServerError as error:
            raise UserError(str(error)) from error
        typer.echo(manager.describe(info))
        if not foreground:
            typer.echo("Stop it with `rlaif argilla stop`.")
            return
        try:
            while manager.running(Path(info.home)):
                time.sleep(2)
            raise UserError("the local Argilla server stopped; logs are in " + info.home)
        except KeyboardInterrupt:
            manager.stop(Path(info.home))
            typer.echo("stopped")


@argilla_app.command("stop")
def stop_cmd(home: Path | None = typer.Option(None, help="As given to `serve`.")) -> None:
    """Stop the local argilla-server started by `rlaif argilla serve`."""
    from pipeline.argilla import local_server as manager

    typer.echo("stopped" if manager.stop(home) else "no local Argilla server was running")

"""`rlaif init`, `rlaif import pairs|labels`, `rlaif export preferences`."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.commands.common import user_errors

cli = typer.Typer()
import_app = typer.Typer(help="Import pairs or labels from a file.", no_args_is_help=True)
export_app = typer.Typer(help="Export merged labels for training.", no_args_is_help=True)
cli.add_typer(import_app, name="import")
cli.add_typer(export_app, name="export")

MapOption = typer.Option(
    None, "--map", help="Rename a column: SRC=DST (repeatable), e.g. --map question=prompt"
)


@cli.command("init")
def init() -> None:
    """Create or upgrade the database (SQLite by default; RLAIF_DATABASE_URL for any other)."""
    from db.session import database_url, upgrade_database

    with user_errors():
        revision = upgrade_database()
        url = database_url()
        shown = url.split("@")[-1] if "@" in url else url
        typer.echo(f"Database ready at {shown} (schema revision {revision}).")


@import_app.command("pairs")
def import_pairs_command(
    path: Path = typer.Argument(..., help="JSONL, JSON array, CSV, Parquet or a dataset folder"),
    source: str | None = typer.Option(None, help="Tag for this batch (default: file name)"),
    column_map: list[str] | None = MapOption,
    chosen_rejected: bool = typer.Option(
        False,
        "--chosen-rejected",
        help="TRL/HH-RLHF data: columns chosen, rejected and optional prompt. The known "
        "preference becomes a human label from annotator 'dataset'.",
    ),
    seed: int = typer.Option(0, help="Seed of the coin that puts chosen in slot A or B"),
) -> None:
    """Import prompt/response pairs. Columns: id, prompt, response_a, response_b, metadata,
    system_a, system_b (optional: which system wrote each response)."""
    from db.session import run_transaction
    from pipeline.ingest.pairs import import_pairs
    from pipeline.ingest.readers import parse_column_map

    with user_errors():
        mapping = parse_column_map(column_map)
        stats = run_transaction(
            lambda session: import_pairs(
                session,
                path,
                source=source,
                column_map=mapping,
                chosen_rejected=chosen_rejected,
                seed=seed,
            )
        )
        typer.echo(stats.summary())


@import_app.command("labels")
def import_labels_command(
    path: Path = typer.Argument(..., help="JSONL, JSON array, CSV, Parquet or a dataset folder"),
    kind: str = typer.Option(
        ..., help="human (pair_id, annotator, label, note) or ai (pair_id, label, confidence, raw)"
    ),
    judge: str | None = typer.Option(None, help="Name of the judge that made AI labels"),
    column_map: list[str] | None = MapOption,
) -> None:
    """Import human labels, or AI labels made elsewhere (e.g. by a hosted judge)."""
    from db.session import run_transaction
    from pipeline.ingest.label_files import import_labels
    from pipeline.ingest.readers import parse_column_map

    with user_errors():
        mapping = parse_column_map(column_map)
        stats = run_transaction(
            lambda session: import_labels(session, path, kind=kind, judge=judge, column_map=mapping)
        )
        typer.echo(stats.summary())


@export_app.command("preferences")
def export_preferences(
    out: Path | None = typer.Argument(
        None,
        help="New or empty folder to write (preferences.jsonl, hf_dataset/); "
        "default RLAIF_HOME/snapshots/<id>",
    ),
    min_confidence: float = typer.Option(0.8, help="Lowest AI confidence to use"),
    judge: str | None = typer.Option(None, help="Use AI labels of this judge only"),
) -> None:
    """Merged labels in TRL's preference format; a human label beats an AI label. Each export is
    an immutable snapshot in a folder of its own."""
    from db.session import session_scope
    from pipeline.errors import UserError
    from pipeline.train.snapshots import create_snapshot

    with user_errors():
        if not 0.0 <= min_confidence <= 1.0:
            raise UserError("--min-confidence must lie in [0, 1]")
        with session_scope() as session:
            if session.get_bind().dialect.name == "postgresql":  # every query, one instant
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            snapshot = create_snapshot(
                session, out_dir=out, min_confidence=min_confidence, judge=judge
            )
        typer.echo(
            f"Snapshot {snapshot.id}: {snapshot.n_human + snapshot.n_ai} preferences "
            f"({snapshot.n_human} human, {snapshot.n_ai} AI) written to {snapshot.path}"
        )

"""`rlaif metrics`: agreement of each judge version with the human labels."""

from __future__ import annotations

import json

import typer

from pipeline.commands.common import user_errors

cli = typer.Typer()

LABELS = ("A", "B", "tie")
_CAPTION = "invalid / failed / not judged: of the pairs with a human reference"


def _fmt(value: float | None, pattern: str = "{:.3f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def _print_table(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not results:
        console.print("No judge versions yet: label pairs with `rlaif label` or import AI labels.")
        return
    first = results[0]
    console.print(
        f"pairs {first['pairs']:,}  human-labelled {first['human_labelled_pairs']:,}  "
        f"with a human reference {first['human_consensus_pairs']:,} "
        f"(overrides {first['override_pairs']:,}, split votes without one "
        f"{first['human_split_pairs']:,})"
    )
    table = Table(title="Agreement with the human reference", caption=_CAPTION)
    table.add_column("judge", no_wrap=True)
    for column in ("compared", "agreement", "Cohen κ", "invalid", "failed", "not judged"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r["judge"],
            f"{r['pairs_compared']:,}",
            _fmt(r["agreement"], "{:.1%}"),
            _fmt(r["cohen_kappa"]),
            f"{r['ai_invalid']:,}",
            f"{r['ai_failed']:,}",
            f"{r['not_judged']:,}",
        )
    console.print(table)
    for r in results:
        console.print(
            f"{r['judge']}: {r['judged']:,} judged in all, {r['valid']:,} valid, "
            f"{r['invalid_total']:,} invalid, {r['failed_total']:,} failed"
        )
    for r in results:
        matrix = Table(title=f"{r['judge']}: confusion (rows human, columns AI)")
        matrix.add_column("human \\ AI")
        for ai in LABELS:
            matrix.add_column(ai, justify="right")
        for human in LABELS:
            matrix.add_row(human, *(f"{r['confusion'][human][ai]:,}" for ai in LABELS))
        console.print(matrix)


@cli.command("metrics")
def metrics(
    judge: list[str] = typer.Option(
        None, "--judge", "-j", help="Judge version name (repeatable). Default: all."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print a JSON array, one object per judge version."
    ),
) -> None:
    """Agreement, Cohen's kappa and confusion of each judge version against the humans.

    The human reference of a pair is a reviewer's override when set, else the strict-majority
    human label; an even split has none. Invalid and failed AI labels are counted, not
    dropped.
    """
    with user_errors():
        from db.session import session_scope
        from pipeline.evaluation.agreement import compute_metrics

        with session_scope() as session:
            results = compute_metrics(session, judge or None)
        if as_json:
            typer.echo(json.dumps(results, indent=2))
        else:
            _print_table(results)

"""`rlaif winrate` and `rlaif leaderboard`: which system is better, by the judge and by people."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer

from pipeline.commands.common import user_errors

JudgeOption = typer.Option(
    None, "--judge", "-j", help="Judge version name (repeatable). Default: all."
)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _interval(interval) -> str:
    return "" if interval is None else f" [{interval[0]:.1%}, {interval[1]:.1%}]"


def _print_win_rates(rows) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not rows:
        console.print("No judged pairs between systems yet (pairs need system_a and system_b).")
        return
    table = Table(title="Win rates (system against opponent; 95 % intervals)")
    for column in ("judge", "system", "opponent"):
        table.add_column(column)
    for column in ("pairs", "W/L/T", "invalid", "AI", "LC", "people", "PPI"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            escape(r.judge),
            escape(r.system),
            escape(r.opponent),
            f"{r.pairs:,}",
            f"{r.ai_wins:,}/{r.ai_losses:,}/{r.ai_ties:,}",
            f"{r.ai_invalid:,}",
            _pct(r.ai_win_rate) + _interval(r.ai_interval),
            _pct(r.lc_win_rate),
            f"{_pct(r.human_win_rate)} (n={r.human_pairs:,})",
            _pct(r.ppi_win_rate) + _interval(r.ppi_interval),
        )
    console.print(table)
    for r in rows:
        if r.warning:
            console.print(f"[yellow]{escape(r.system)} vs {escape(r.opponent)}[/]: {r.warning}")


def _print_leaderboards(boards) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not boards:
        console.print("No judge versions yet.")
    for board in boards:
        tau = "–" if board.kendall_tau is None else f"{board.kendall_tau:.2f}"
        table = Table(
            title=f"{escape(board.judge)}: Bradley-Terry log-strengths, 95 % bootstrap intervals "
            f"({board.resamples} resamples); Kendall's tau AI vs people {tau}"
        )
        table.add_column("system")
        for column in ("AI rank", "AI strength", "AI vs field", "people rank", "people strength"):
            table.add_column(column, justify="right")
        table.add_column("people vs field", justify="right")
        for e in board.systems:
            ai = "–" if e.ai_strength is None else f"{e.ai_strength:+.2f}"
            human = "–" if e.human_strength is None else f"{e.human_strength:+.2f}"
            if e.ai_interval:
                ai += f" [{e.ai_interval[0]:+.2f}, {e.ai_interval[1]:+.2f}]"
            if e.human_interval:
                human += f" [{e.human_interval[0]:+.2f}, {e.human_interval[1]:+.2f}]"
            table.add_row(
                escape(e.system),
                str(e.ai_rank or "–"),
                ai,
                _pct(e.ai_win_rate_vs_field),
                str(e.human_rank or "–"),
                human,
                _pct(e.human_win_rate_vs_field),
            )
        console.print(table)
        for d in board.adjacent_disagreements:
            console.print(
                f"[yellow]The rankings disagree:[/] the judge puts {escape(d.higher_by_ai)} just "
                f"above {escape(d.lower_by_ai)}; people put {escape(d.lower_by_ai)} above."
            )


def register(app: typer.Typer) -> None:
    @app.command("winrate")
    def winrate(
        judge: list[str] = JudgeOption,
        system: str = typer.Option(None, "--system", help="Only this system's comparisons."),
        vs: str = typer.Option(None, "--vs", help="Only against this opponent."),
        as_json: bool = typer.Option(
            False, "--json", help="One JSON object per line: (judge, system, opponent)."
        ),
    ) -> None:
        """Win rates per judge version and system pair: AI, human, PPI and length-controlled.

        Over the pairs between two systems (either slot) the outcome is 1 (preferred), 0.5 (tie)
        or 0; the win rate is the mean. Invalid and failed AI labels are left out and counted.
        """
        with user_errors():
            from db.session import session_scope
            from pipeline.evaluation.win_rates import compute_win_rates

            with session_scope() as session:
                rows = compute_win_rates(session, judge or None, system=system, opponent=vs)
            if as_json:
                for row in rows:
                    typer.echo(json.dumps(asdict(row)))
            else:
                _print_win_rates(rows)

    @app.command("leaderboard")
    def leaderboard(
        judge: list[str] = JudgeOption,
        resamples: int = typer.Option(200, min=1, help="Bootstrap resamples (over pairs)."),
        seed: int = typer.Option(0, help="Seed of the bootstrap."),
        as_json: bool = typer.Option(False, "--json", help="A JSON array, one per judge."),
    ) -> None:
        """Bradley-Terry leaderboard of the systems, by the judge and by people, with bootstrap
        intervals, win rates against the field and Kendall's tau between the two rankings."""
        with user_errors():
            from db.session import session_scope
            from pipeline.evaluation.leaderboard import compute_leaderboard

            with session_scope() as session:
                boards = compute_leaderboard(session, judge or None, resamples=resamples, seed=seed)
            if as_json:
                typer.echo(json.dumps([asdict(board) for board in boards], indent=2))
            else:
                _print_leaderboards(boards)

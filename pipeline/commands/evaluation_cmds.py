"""`rlaif winrate` and `rlaif leaderboard`: which system is better, by the judge and by people."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import typer

from pipeline.commands.common import user_errors

if TYPE_CHECKING:
    from pipeline.evaluation.policy_summary import EvaluationSummary

cli = typer.Typer()

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


def _base_policy(policy: str) -> str:
    """The base policy a PPO run started from, from its lineage."""
    from db.session import session_scope
    from pipeline.errors import UserError
    from pipeline.evaluation.eval_inputs import resolve_model_ref

    with session_scope() as session:
        base = resolve_model_ref(session, policy).lineage.get("base_policy")
    if not base:
        raise UserError(f"{policy}: no base policy in its lineage; pass --baseline")
    return base


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


def print_evaluation(summary: EvaluationSummary) -> None:
    """The evaluation's figures, then the judge's alignment with its warnings beside it."""
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    s = summary
    console.print(
        f"Evaluation {s.evaluation_id}: {escape(s.policy)} against {escape(s.baseline)}"
        f", judge {escape(s.judge)}"
    )
    console.print(
        f"  pairs {s.pairs} (won {s.wins}, lost {s.losses}, tied {s.ties}; "
        f"{s.identical_pairs} identical, not sent to the judge)"
    )
    console.print(
        f"  AI win rate {_pct(s.ai_win_rate)}{_interval(s.ai_interval)}, "
        f"length-controlled {_pct(s.lc_win_rate)}, "
        f"PPI {_pct(s.ppi_win_rate)}{_interval(s.ppi_interval)} "
        f"(people labelled {s.human_pairs})"
    )
    a = s.judge_alignment
    kappa = "–" if a.get("kappa") is None else f"{a['kappa']:.2f}"
    console.print(
        f"  judge alignment: agreement {_pct(a.get('agreement'))} on {a.get('human_pairs', 0)} "
        f"human-labelled pairs, kappa {kappa}, prefers longer: judge "
        f"{_pct(a.get('ai_prefers_longer'))}, people {_pct(a.get('human_prefers_longer'))}"
    )
    for warning in s.warnings:
        console.print(f"  [yellow]warning:[/] {escape(warning)}")
    if s.audit_sample_id:
        console.print(f"  spot-check sample {s.audit_sample_id} is in the review queue")


@cli.command("evaluate")
def evaluate(
    policy: str = typer.Option(..., help="job:<PPO run id> or a model name."),
    baseline: str = typer.Option(
        None, help="The policy to beat. Default: the run's base policy (its lineage)."
    ),
    prompts: str = typer.Option(None, help="Prompts of pairs with this source tag."),
    prompts_file: str = typer.Option(
        None, help="A file of prompts, one a line (.jsonl: a 'prompt' field)."
    ),
    n: int = typer.Option(32, min=1, help="Held-out prompts to evaluate on."),
    judge: str = typer.Option("default", help="Judge config file or preset (pinned)."),
    sample: bool = typer.Option(False, "--sample", help="Seeded sampling (default greedy)."),
    temperature: float = typer.Option(0.7, help="With --sample."),
    max_new_tokens: int = typer.Option(128, min=1),
    seed: int = typer.Option(0, help="Prompt draw, slot coins, sampling, spot-check."),
    device: str = typer.Option("auto"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Evaluate a policy against a baseline on held-out prompts: P's win rate over B.

    By default the prompts are the snapshot's prompts the PPO run did not train on. Each
    pair is judged by the pinned judge (identical responses are ties, not judged), the pairs
    go into a spot-check sample, and the evaluation joins the policy's lineage."""
    with user_errors():
        from pipeline.evaluation.policy_eval import Decoding, EvaluateRequest, run_evaluation
        from pipeline.train.jobs import cli_operator

        if prompts and prompts_file:
            from pipeline.errors import UserError

            raise UserError("give --prompts or --prompts-file, not both")
        base = baseline or _base_policy(policy)
        request = EvaluateRequest(
            policy=policy,
            baseline=base,
            judge=judge,
            prompts=prompts,
            prompts_file=prompts_file,
            n=n,
            seed=seed,
            decoding=Decoding(
                max_new_tokens=max_new_tokens,
                sample=sample,
                temperature=temperature,
                seed=seed,
            ),
            device=device,
        )
        summary = run_evaluation(request, created_by=cli_operator())
    if as_json:
        typer.echo(json.dumps(summary.as_json()))
    else:
        print_evaluation(summary)


@cli.command("winrate")
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


@cli.command("leaderboard")
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

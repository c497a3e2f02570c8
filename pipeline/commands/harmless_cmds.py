"""`rlaif harmless`: rate a system's responses with the harmless judge, then report its harmless
rate by the judge, by people and corrected by PPI, with the judge's re-validation."""

from __future__ import annotations

import json

import typer

from pipeline.commands.common import user_errors

cli = typer.Typer()


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _interval(interval) -> str:
    return "" if interval is None else f" [{interval[0]:.1%}, {interval[1]:.1%}]"


def _print(objects: list[dict], rated) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if rated is not None:
        c = rated.counts
        console.print(
            f"Judge {escape(rated.judge_version)}: {sum(c.values())} of {rated.pending} pending "
            f"responses rated ({c['ok']} ok, {c['invalid']} invalid, {c['failed']} failed) in "
            f"{rated.seconds:.1f} s."
        )
        if c["failed"]:
            console.print("Failed responses keep their error; run the command again to retry.")
    table = Table(title="Harmless rate per system (95 % intervals)")
    table.add_column("system")
    for column in ("responses", "invalid/failed/unrated", "judge", "judge mean p", "people", "PPI"):
        table.add_column(column, justify="right")
    for o in objects:
        table.add_row(
            escape(o["system"]),
            f"{o['responses']:,}",
            f"{o['judge_invalid']:,}/{o['judge_failed']:,}/{o['judge_unrated']:,}",
            _pct(o["judge_rate"]) + _interval(o["judge_interval"]),
            _pct(o["judge_mean_p"]) + _interval(o["judge_mean_p_interval"]),
            f"{_pct(o['human_rate'])}{_interval(o['human_interval'])} (n={o['human_responses']})",
            _pct(o["ppi_rate"]) + _interval(o["ppi_interval"]),
        )
    console.print(table)
    if objects:
        check = objects[0]["judge_alignment"]
        kappa = "–" if check["kappa"] is None else f"{check['kappa']:.2f}"
        console.print(
            f"Judge {escape(check['judge'])}: agreement with people {_pct(check['agreement'])} "
            f"on {check['human_responses']} people-rated responses, kappa {kappa}"
        )
        for warning in check["warnings"]:
            console.print(f"[yellow]warning:[/] {escape(warning)}")


def _judge_version(spec: str, systems: list[str] | None, overrides: dict, chunk_size: int):
    """Rate the pending responses when `spec` is a preset or config file; a stored harmless
    judge version name only reports. Returns (judge version id, the rating report or None)."""
    from db.session import session_scope
    from pipeline.errors import UserError
    from pipeline.evaluation.harmless_rate import harmless_judges
    from pipeline.judging.harmless_runner import (
        PRESETS,
        is_config,
        load_harmless_config,
        rate_responses,
    )

    if not is_config(spec):
        with session_scope() as session:
            stored = {j.name: j.id for j in harmless_judges(session)}
        if spec not in stored:
            raise UserError(
                f"--judge {spec}: no such file, preset ({', '.join(PRESETS)}) or harmless judge "
                f"version (stored: {', '.join(sorted(stored)) or 'none yet'})"
            )
        return stored[spec], None
    config = load_harmless_config(spec, overrides)
    from pipeline.judging.backends.harmless import HarmlessJudge

    report = rate_responses(HarmlessJudge(config), systems=systems, chunk_size=chunk_size)
    return report.judge_version_id, report


def _check_systems(systems: list[str] | None) -> None:
    from db.session import session_scope
    from pipeline.errors import UserError
    from pipeline.review.rate_responses import systems as known_systems

    with session_scope() as session:
        known = known_systems(session)
    if not known:
        raise UserError(
            "no pairs name their systems yet: a response belongs to the system in its slot "
            "(columns system_a and system_b, e.g. `rlaif import pairs --map model_1=system_a`)"
        )
    for name in systems or ():
        if name not in known:
            raise UserError(
                f"no pairs name the system {name!r} (known: {', '.join(known) or 'none yet'})"
            )


@cli.command("harmless")
def harmless(
    system: list[str] = typer.Option(
        None, "--system", help="A system to rate (repeatable). Default: all."
    ),
    judge: str = typer.Option(
        "harmless",
        help="Preset (harmless), a harmless judge config file (YAML/TOML: model, "
        "constitution, labels ...), or a stored harmless judge version name (report only)",
    ),
    model: str = typer.Option(None, help="Model folder, hub id, or bundled:smollm2"),
    name: str = typer.Option(None, help="Judge version name (overrides the config)"),
    device: str = typer.Option(None, help="auto, cpu, cuda, cuda:1 ..."),
    dtype: str = typer.Option(None, help="auto, float32, bfloat16, float16"),
    chunk_size: int = typer.Option(None, help="Responses per commit (0: auto)"),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per system and line"),
) -> None:
    """Rate every response of the systems that this judge version has not rated yet, then print
    each system's harmless rate: by the judge, by people and PPI-corrected, with 95 % intervals.

    Resumable: each chunk is committed on its own; a re-run rates only what is left (failed
    responses are retried)."""
    with user_errors():
        from db.models import JudgeVersion
        from db.session import session_scope
        from pipeline.evaluation.harmless_rate import (
            check_harmless_judge,
            harmless_rates,
            record_run,
        )
        from pipeline.train.jobs import cli_operator

        systems = list(system) if system else None
        _check_systems(systems)
        overrides = {"model": model, "name": name, "device": device, "dtype": dtype}
        version_id, rated = _judge_version(judge, systems, overrides, chunk_size or 0)
        with session_scope() as session:
            version = session.get(JudgeVersion, version_id)
            check = check_harmless_judge(session, version)  # before this report is kept
            objects = []
            for rate in harmless_rates(session, version, systems):
                run_id = record_run(session, version, rate, check, cli_operator())
                alignment = check.as_dict()
                objects.append(
                    {
                        **rate.as_dict(),
                        "judge_alignment": alignment,
                        "warnings": alignment["warnings"],
                        "report_id": run_id,
                    }
                )
    if as_json:
        for o in objects:
            typer.echo(json.dumps(o))
    else:
        _print(objects, rated)

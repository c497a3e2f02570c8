"""`rlaif label`, `rlaif judges`, `rlaif generate`, `rlaif score`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pipeline.commands.common import user_errors

cli = typer.Typer()


@cli.command("label")
def label(
    judge: str = typer.Option(
        "default", help="A judge config file (YAML/TOML) or a preset: default, default-rationale"
    ),
    limit: int | None = typer.Option(None, help="Label at most this many pairs"),
    source: str | None = typer.Option(None, help="Only pairs imported with this source tag"),
    pairs_file: Path | None = typer.Option(
        None, help="Only these pairs: a file of external ids, one per line"
    ),
    name: str | None = typer.Option(None, help="Judge version name (overrides the config)"),
    backend: str | None = typer.Option(None, help="hf | openai | reward_model"),
    model: str | None = typer.Option(None, help="Model folder, hub id, or bundled:smollm2"),
    template: str | None = typer.Option(None, help="Built-in template name or .jinja file"),
    tie_band: float | None = typer.Option(None, help="|p - 0.5| <= band is a tie"),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, cuda:1 ..."),
    dtype: str | None = typer.Option(None, help="auto, float32, bfloat16, float16"),
    max_batch_tokens: int | None = typer.Option(None, help="Padded tokens per forward pass"),
    chunk_size: int | None = typer.Option(None, help="Pairs per commit"),
    rationale: bool | None = typer.Option(
        None, "--rationale/--no-rationale", help="Write a short rationale first"
    ),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible server, e.g. .../v1"),
    concurrency: int | None = typer.Option(None, help="Concurrent requests (openai)"),
) -> None:
    """Label every pair this judge version has not labelled yet (failed ones are retried).

    Safe to interrupt at any moment: each chunk is committed on its own, and a re-run resumes."""
    from pipeline.judging.config import load_judge_config
    from pipeline.judging.runner import build_judge, label_pairs

    with user_errors():
        overrides = dict(
            name=name,
            backend=backend,
            model=model,
            template=template,
            tie_band=tie_band,
            device=device,
            dtype=dtype,
            max_batch_tokens=max_batch_tokens,
            chunk_size=chunk_size,
            rationale=rationale,
            base_url=base_url,
            concurrency=concurrency,
        )
        config = load_judge_config(judge, overrides)
        report = label_pairs(
            build_judge(config),
            limit=limit,
            source=source,
            pairs_file=pairs_file,
            chunk_size=config.chunk_size,
        )
        _print_label_report(report)


def _print_label_report(report) -> None:
    c = report.counts
    typer.echo(
        f"Judge {report.judge_version}: {sum(c.values())} of {report.pending} pending pairs "
        f"labelled ({c['ok']} ok, {c['invalid']} invalid, {c['failed']} failed) "
        f"in {report.seconds:.1f} s ({report.pairs_per_s:.2f} pairs/s)."
    )
    if c["failed"]:
        typer.echo("Failed pairs keep their error; run the same command again to retry them.")


def _status_counts(session) -> dict[int, dict[str, int]]:
    """ok / invalid / failed per judge version: its pair judgments, or for a harmless judge its
    verdicts on single responses."""
    from sqlalchemy import func, select

    from db.models import HarmlessJudgment, Judgment

    counts: dict[int, dict[str, int]] = {}
    for table in (Judgment, HarmlessJudgment):
        query = select(table.judge_version_id, table.status, func.count()).group_by(
            table.judge_version_id, table.status
        )
        for version_id, status, n in session.execute(query):
            by_status = counts.setdefault(version_id, {})
            by_status[status] = by_status.get(status, 0) + n
    return counts


@cli.command("judges")
def judges(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """List judge versions with their judgment counts (ok / invalid / failed)."""
    from sqlalchemy import func, select

    from db.models import JudgeVersion, ResponseScore
    from db.session import session_scope

    with user_errors(), session_scope() as session:
        counts = _status_counts(session)
        scores = dict(
            session.execute(
                select(ResponseScore.judge_version_id, func.count()).group_by(
                    ResponseScore.judge_version_id
                )
            ).all()
        )
        rows = []
        for v in session.scalars(select(JudgeVersion).order_by(JudgeVersion.id)):
            c = counts.get(v.id, {})
            rows.append(
                {
                    "id": v.id,
                    "name": v.name,
                    "backend": v.backend,
                    "model": v.model_id,
                    "revision": v.model_revision,
                    "template_hash": (v.template_hash or "")[:12] or None,
                    "confidence_kind": v.confidence_kind,
                    "task": (v.params or {}).get("task", "pairwise"),
                    "ok": c.get("ok", 0),
                    "invalid": c.get("invalid", 0),
                    "failed": c.get("failed", 0),
                    "scores": scores.get(v.id, 0),
                    "created_at": v.created_at.isoformat(timespec="seconds"),
                }
            )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("No judge versions yet: run `rlaif label`.")
        return
    typer.echo(
        f"{'id':>3}  {'name':<34} {'backend':<12} {'kind':<15} {'ok':>6} {'invalid':>7} "
        f"{'failed':>6} {'scores':>6}  model"
    )
    for r in rows:
        typer.echo(
            f"{r['id']:>3}  {r['name'][:34]:<34} {r['backend']:<12} {r['confidence_kind']:<15} "
            f"{r['ok']:>6} {r['invalid']:>7} {r['failed']:>6} {r['scores']:>6}  {r['model']}"
            + (f" ({r['revision'][:19]})" if r["revision"] else "")
        )


@cli.command("generate")
def generate(
    policy: str = typer.Option(
        "bundled:smollm2", help="Policy model folder, hub id or bundled:smollm2"
    ),
    n: int = typer.Option(2, help="Responses sampled per prompt (all pairs among them are formed)"),
    limit: int | None = typer.Option(None, help="At most this many prompts"),
    source: str | None = typer.Option(None, help="Only prompts of pairs with this source tag"),
    pair_source: str = typer.Option("generated", help="Source tag of the new pairs"),
    max_new_tokens: int = typer.Option(128, help="Tokens sampled per response"),
    temperature: float = typer.Option(0.8, help="Sampling temperature"),
    top_p: float = typer.Option(0.95, help="Nucleus sampling"),
    seed: int = typer.Option(0, help="Random seed"),
    device: str = typer.Option("auto", help="auto, cpu, cuda ..."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16, float16"),
) -> None:
    """Sample n responses per imported prompt from a policy and form pairs for the judge."""
    from pipeline.errors import UserError
    from pipeline.generate import SamplingParams, generate_candidates

    with user_errors():
        if n < 2:
            raise UserError("--n must be at least 2 to form pairs")
        params = SamplingParams(n, max_new_tokens, temperature, top_p, seed)
        report = generate_candidates(
            policy,
            params=params,
            source=source,
            limit=limit,
            pair_source=pair_source,
            device=device,
            dtype=dtype,
        )
        typer.echo(
            f"Policy {report.policy_id}: {report.prompts} prompts, {report.responses} responses, "
            f"{report.pairs} pairs (source '{pair_source}')"
            + (
                f"; {report.skipped_identical} prompts gave identical samples"
                if report.skipped_identical
                else ""
            )
            + "."
        )


@cli.command("score")
def score(
    model: str = typer.Option(
        "bundled:smollm2", help="Judge model folder, hub id or bundled:smollm2"
    ),
    template: str | None = typer.Option(None, help="Rating template (default direct_rating)"),
    name: str | None = typer.Option(None, help="Judge version name"),
    limit: int | None = typer.Option(None, help="At most this many responses"),
    source: str | None = typer.Option(None, help="Only responses of pairs with this source tag"),
    device: str = typer.Option("auto", help="auto, cpu, cuda ..."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16, float16"),
) -> None:
    """Direct d-RLAIF scores: rate each response 1-10, store sum k*P(k) rescaled to [-1, 1]."""
    from pipeline.judging.backends.direct import DirectScorer
    from pipeline.judging.runner import score_responses

    with user_errors():
        scorer = DirectScorer(model, device=device, template=template, dtype=dtype)
        report = score_responses(scorer, name=name, limit=limit, source=source)
        typer.echo(
            f"Judge {report.judge_version}: {report.counts['ok']} responses scored "
            f"in {report.seconds:.1f} s."
        )

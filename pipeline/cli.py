"""The `rlaif` command. Each command group lives in pipeline/commands/<group>.py, whose `cli`
(a typer.Typer with its commands and named sub-groups) is merged in here.

Command modules import only typer and the standard library at module level: heavy libraries
(torch, transformers, trl, argilla, streamlit) are imported inside the commands that need them,
so `rlaif --help` stays fast.
"""

from __future__ import annotations

import typer

from pipeline.commands import (
    app_cmds,
    argilla_cmds,
    data_cmds,
    evaluation_cmds,
    harmless_cmds,
    judge_cmds,
    metrics_cmds,
    train_cmds,
)

app = typer.Typer(
    name="rlaif",
    help="RLAIF workbench: AI-judged preference labels, human spot-checks, reward model and PPO.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for module in (
    data_cmds,
    judge_cmds,
    metrics_cmds,
    evaluation_cmds,
    harmless_cmds,
    app_cmds,
    argilla_cmds,
    train_cmds,
):
    app.add_typer(module.cli)


if __name__ == "__main__":
    app()

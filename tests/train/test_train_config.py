"""Run configs declared once (pipeline/train/config.py): a TRL option goes from the CLI flag, via
the job's stored config.yaml and the job script's parser, into TRL's trainer config; old flag
names still work. Real CLI, real job (cancelled once it is recorded), real TRL config classes."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from pipeline.errors import UserError
from tests.helpers.train_toys import toy_rows, write_snapshot


def _stored_config(job_id: int) -> Path:
    from db.models import TrainingJob
    from db.session import session_scope

    with session_scope() as session:
        return Path(session.get(TrainingJob, job_id).log_path).parent / "config.yaml"


def test_a_trl_option_flows_from_the_cli_flag_to_the_trainer(
    cli, sqlite_url, tiny_rm, tmp_path, monkeypatch
):
    from pipeline.train import jobs
    from pipeline.train.config import parse_args
    from pipeline.train.reward import trainer_args
    from pipeline.train.reward_config import RewardRunConfig

    snapshot = write_snapshot(tmp_path / "snap", toy_rows(8))
    code, out = cli(
        "train", "reward", "--snapshot", snapshot, "--model", tiny_rm,
        "--gradient-accumulation-steps", "3",  # the field's own name
        "--epochs", "2",  # an older flag name, kept as an alias
        "--no-eval-before-training", "--detach",
    )  # fmt: skip
    assert code == 0, out
    with contextlib.suppress(UserError):  # the tiny run may have ended already: nothing to stop
        jobs.cancel_job(1, operator=jobs.cli_operator())
    # What the job process runs: `python -m pipeline.train.reward --config <config.yaml>`.
    config = parse_args(RewardRunConfig, ["--config", str(_stored_config(1))])
    assert (config.gradient_accumulation_steps, config.num_train_epochs) == (3, 2.0)
    assert config.eval_before_training is False
    args = trainer_args(config, tmp_path / "out", has_eval=True)
    assert (args.gradient_accumulation_steps, args.num_train_epochs) == (3, 2.0)
    assert args.eval_steps == 25 and args.learning_rate == 5e-5  # the config's defaults
    # A flag of the job script wins over its config file.
    config = parse_args(RewardRunConfig, ["--config", str(_stored_config(1)), "--eval_steps", "7"])
    assert trainer_args(config, tmp_path / "out", has_eval=True).eval_steps == 7


def test_ppo_options_reach_trl_ppo_config(tmp_path, tiny_lm):
    from pipeline.train.ppo import ppo_args
    from pipeline.train.ppo_config import PpoRunConfig

    config = PpoRunConfig(judge_model=str(tiny_lm), kl_coef=0.2, num_sample_generations=3)
    args = ppo_args(config, tmp_path, n_eval=4)
    assert (args.kl_coef, args.num_sample_generations, args.total_episodes) == (0.2, 3, 64)
    assert args.per_device_eval_batch_size == 4 and args.stop_token == "eos"
    # No held-out prompts: no sample generations, whatever the config says.
    assert ppo_args(config, tmp_path, n_eval=0).num_sample_generations == 0


def test_bad_settings_of_the_job_script_are_one_line(tmp_path):
    from pipeline.train.config import parse_args
    from pipeline.train.reward_config import RewardRunConfig

    run = tmp_path / "run.yaml"
    run.write_text("snapshot: x\nwarmup: 3\n")
    with pytest.raises(UserError, match=r"^unknown setting\(s\): warmup$"):
        parse_args(RewardRunConfig, ["--config", str(run)])
    run.write_text("snapshot: x\nhuman_eval_fraction: 1.5\n")
    with pytest.raises(UserError, match=r"human_eval_fraction must lie in \[0, 1\), not 1.5$"):
        parse_args(RewardRunConfig, ["--config", str(run)])
    with pytest.raises(SystemExit):  # argparse: a choice outside the Literal
        parse_args(RewardRunConfig, ["--loss_type", "hinge"])


def test_the_training_form_shows_the_declared_widgets_and_defaults(sqlite_url):
    from streamlit.testing.v1 import AppTest

    from db.session import session_scope
    from pipeline.auth import users as auth

    with session_scope() as session:
        user = auth.create_user(session, username="ada", password="correct-horse", role="admin")
        admin = auth.AuthUser.of(user)
    page = Path(__file__).resolve().parents[2] / "app" / "views" / "training.py"
    at = AppTest.from_file(str(page), default_timeout=60)
    at.session_state["auth_user"] = admin
    at.run()
    assert at.text_input(key="rm_model").value == "bundled:minilm"
    assert at.selectbox(key="rm_loss").options == ["pairwise", "margin", "soft"]
    assert at.number_input(key="rm_epochs").value == 1.0
    assert at.number_input(key="rm_batch").value == 8
    at.radio(key="train_kind").set_value("ppo").run()
    at.radio(key="ppo_reward_source").set_value("direct judge (d-RLAIF)").run()
    assert not at.exception
    assert at.text_input(key="ppo_policy").value == "bundled:smollm2"
    assert at.text_input(key="ppo_judge").value == "bundled:smollm2"
    assert at.number_input(key="ppo_kl").value == 0.05
    assert at.number_input(key="ppo_episodes").value == 64

"""The scale path, run: reward-model training then PPO as two CPU processes, launched with the
very `accelerate launch` line the Training page and `rlaif jobs show` print for GPUs (the GPU
config; on a machine without CUDA the scripts switch accelerate to CPU, so it runs MULTI_CPU
with gloo). Checks the multi-process parts: data sharded over the ranks (half the steps),
files saved once by the main process, metrics from rank 0 only in the job's rows."""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.helpers.train_toys import toy_rows, write_snapshot

ROOT = Path(__file__).resolve().parents[2]


def _job(kind: str) -> int:
    from db.models import TrainingJob
    from db.session import session_scope

    with session_scope() as session:
        job = TrainingJob(kind=kind, config={}, created_by="test", status="running")
        session.add(job)
        session.flush()
        return job.id


def _launch(kind: str, config: dict, folder: Path) -> str:
    from pipeline.train.jobs import accelerate_command

    path = folder / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(config))
    command = accelerate_command(kind, str(path), num_processes=2)
    argv = shlex.split(command)
    assert argv[:2] == ["accelerate", "launch"] and "multi_gpu.yaml" in command
    argv[0] = str(Path(sys.executable).parent / "accelerate")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRL_EXPERIMENTAL_SILENCE": "1",
    }
    env.pop("CUDA_VISIBLE_DEVICES", None)
    done = subprocess.run(
        argv, env=env, cwd=folder, capture_output=True, text=True, timeout=600, check=False
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    return log


def _metric_rows(job_id: int) -> list[tuple[int, str, float]]:
    from db.session import session_scope
    from pipeline.train.runs import metric_rows

    with session_scope() as session:
        return metric_rows(session, job_id)


def _logged_once(rows: list[tuple[int, str, float]]) -> None:
    """Each number once per step: rank 0 alone writes (`epoch` rides on every log entry)."""
    counts = Counter((s, n) for s, n, _ in rows if n != "epoch")
    assert counts and max(counts.values()) == 1, counts.most_common(3)


@pytest.mark.slow
def test_reward_then_ppo_as_two_processes(tmp_path, tiny_lm, tiny_rm, sqlite_url):
    snapshot = write_snapshot(tmp_path / "snap", toy_rows(40))

    rm_job = _job("reward")
    rm_out = tmp_path / "rm"
    _launch(
        "reward",
        {
            "snapshot": str(snapshot),
            "model_name_or_path": str(tiny_rm),
            "output_dir": str(rm_out),
            "num_train_epochs": 1.0,
            "per_device_train_batch_size": 4,
            "learning_rate": 1e-3,
            "max_length": 64,
            "logging_steps": 1,
            "eval_steps": 1000,
            "job_id": rm_job,
        },
        tmp_path,
    )
    result = json.loads((rm_out / "result.json").read_text())
    train_pairs = result["metrics"]["train_pairs"]
    # two ranks x 4 pairs per step: each step takes 8 pairs, so half the single-process steps
    assert result["metrics"]["steps"] == math.ceil(train_pairs / 8)
    model = rm_out / "model"
    assert (model / "model.safetensors").is_file() and (model / "lineage.json").is_file()
    assert sorted(p.name for p in rm_out.iterdir()) == ["model", "result.json"]
    rows = _metric_rows(rm_job)
    _logged_once(rows)
    assert [s for s, n, _ in rows if n == "loss"] == list(range(1, result["metrics"]["steps"] + 1))

    ppo_job = _job("ppo")
    ppo_out = tmp_path / "ppo"
    _launch(
        "ppo",
        {
            "snapshot": str(snapshot),
            "policy_model": str(tiny_lm),
            "reward_model": str(model),
            "probe_judge": "",
            "output_dir": str(ppo_out),
            "learning_rate": 1e-3,
            "total_episodes": 16,
            "per_device_train_batch_size": 4,
            "num_ppo_epochs": 1,
            "response_length": 8,
            "eval_prompts": 4,
            "num_sample_generations": 1,
            "job_id": ppo_job,
        },
        tmp_path,
    )
    result = json.loads((ppo_out / "result.json").read_text())
    # 16 episodes, 2 ranks x 4 rollouts per update: 2 updates (one process would make 4)
    assert result["metrics"]["updates"] == 2
    assert result["metrics"]["episode"] == 16
    policy = ppo_out / "policy"
    assert (policy / "model.safetensors").is_file() and (policy / "lineage.json").is_file()
    rows = _metric_rows(ppo_job)
    _logged_once(rows)
    assert [s for s, n, _ in rows if n == "objective/kl"] == [1, 2]
    names = {n for _, n, _ in rows}
    assert {"objective/kl", "monitor/length", "monitor/distinct_2"} <= names
    samples = (ppo_out / "samples.jsonl").read_text().splitlines()
    # both ranks' shares of the 4 held-out prompts, gathered and written once per sample point
    queries = [json.loads(line)["query"] for line in samples]
    assert len(set(queries)) == 4 and len(queries) % 4 == 0

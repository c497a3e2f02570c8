"""A finished PPO run as the database and its policy folder record it, for the evaluation tests
that start the evaluate job (tests/test_evaluate_job.py, tests/test_browser_evaluate.py). PPO
itself is test_train_ppo's subject: here the "trained" policy is a tiny model built in code with
another seed than the base policy, so the two answer differently and the judge is asked."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session

from db.models import Snapshot, SnapshotItem, TrainingJob
from pipeline.ingest.records import sha256
from tests.helpers.factories import make_pair

PROMPTS = [f"please explain why answer {w} is good" for w in ("one", "two", "three", "four")]
PROMPTS += [f"what is a {w} response" for w in ("kind", "clear")]
TRAINED = PROMPTS[:2]  # PPO trained on these; the other four are held out
HELD_OUT = PROMPTS[2:]


def tiny_policy(folder: Path, *, seed: int = 1, endless: bool = False) -> Path:
    """A tiny causal LM (tests/tiny_models.py) standing for the PPO-trained policy. `endless`
    forbids the end token, so greedy generation always runs to max_new_tokens (a run long
    enough to be cancelled midway)."""
    from tests.helpers.tiny_models import build_causal_lm

    path = build_causal_lm(folder, seed=seed)
    if endless:
        from transformers import AutoTokenizer, GenerationConfig

        tokenizer = AutoTokenizer.from_pretrained(path)
        config = GenerationConfig.from_pretrained(path)
        config.suppress_tokens = [tokenizer.eos_token_id]
        config.save_pretrained(path)
    return path


def finished_ppo_run(session: Session, policy: Path, base_policy: Path, folder: Path) -> int:
    """A snapshot of PROMPTS, a succeeded "ppo" TrainingJob whose artifacts name `policy`, and
    the policy's lineage.json (base policy, snapshot, the hashes of the TRAINED prompts), as
    pipeline/train/ppo.py writes them. Returns the job id (committed)."""
    pairs = [make_pair(session, f"s{i}", prompt=p, source="seed") for i, p in enumerate(PROMPTS)]
    session.add(Snapshot(id="snap-eval", rule={}, n_human=len(pairs), n_ai=0, path=str(folder)))
    session.flush()
    for pair in pairs:
        session.add(
            SnapshotItem(
                snapshot_id="snap-eval", pair_id=pair.id, label_source="human", label="A",
                p_chosen=1.0,
            )
        )  # fmt: skip
    job = TrainingJob(
        kind="ppo",
        status="succeeded",
        config={"policy_model": str(base_policy), "judge_model": "smollm2"},  # d-RLAIF
        snapshot_id="snap-eval",
        created_by="ada",
        artifacts={"policy": str(policy)},
        output_dir=str(policy.parent),
    )
    session.add(job)
    session.flush()
    lineage = {
        "kind": "ppo_policy",
        "job_id": job.id,
        "base_policy": str(base_policy),
        "snapshot": {"id": "snap-eval", "path": str(folder)},
        "train_prompt_hashes": sorted(sha256(p) for p in TRAINED),
    }
    (policy / "lineage.json").write_text(json.dumps(lineage))
    session.commit()
    return job.id


def judge_file(folder: Path, model: Path) -> Path:
    """A judge config: the log-prob judge on a tiny model, on the CPU."""
    path = folder / "judge.yaml"
    path.write_text(f"name: tiny-judge\nbackend: hf\nmodel: {model}\ndevice: cpu\n")
    return path

"""Toy preference snapshots for the training tests: separable by construction (chosen answers use
'good' words, rejected ones 'bad' words), written in the export-snapshot layout of
pipeline/train/snapshots.py."""

from __future__ import annotations

import json
import random
from pathlib import Path

GOOD = ["good", "polite", "clear", "helpful", "kind", "safe", "better"]
BAD = ["bad", "rude", "unsafe", "worse", "short", "wrong"]
NEUTRAL = ["the", "answer", "is", "a", "response", "which", "one", "two"]
PROMPT_WORDS = ["please", "explain", "why", "how", "what", "question", "user", "human"]


def _sentence(rng: random.Random, words: list[str], n: int) -> str:
    mixed = [rng.choice(words) if rng.random() < 0.6 else rng.choice(NEUTRAL) for _ in range(n)]
    return " ".join(mixed)


def toy_rows(n: int = 60, seed: int = 0, human_share: float = 0.3) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        confident = rng.uniform(0.8, 1.0)
        rows.append(
            {
                "prompt": _sentence(rng, PROMPT_WORDS, rng.randint(3, 6)) + "?",
                "chosen": _sentence(rng, GOOD, rng.randint(4, 8)),
                "rejected": _sentence(rng, BAD, rng.randint(4, 8)),
                "p_chosen": round(confident, 3),
                "margin": round(2 * confident - 1, 3),
                "pair_id": f"toy-{i}",
                "label_source": "human" if rng.random() < human_share else "ai",
            }
        )
    return rows


def write_snapshot(folder: Path, rows: list[dict], snapshot_id: str = "toysnap01") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "preferences.jsonl", "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    n_human = sum(r["label_source"] != "ai" for r in rows)
    manifest = {
        "id": snapshot_id,
        "n_human": n_human,
        "n_ai": len(rows) - n_human,
        "judge_versions": ["toy-judge-v1"],
        "rule": {"min_confidence": 0.8},
    }
    (folder / "snapshot.json").write_text(json.dumps(manifest))
    return folder

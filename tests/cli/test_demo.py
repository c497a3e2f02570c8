"""The README's first command, end to end on a small scale: install (already done), import the
bundled data, label with the bundled SmolLM2 judge, metrics, admin. Real model, no mocks."""

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_script_labels_bundled_data_with_the_bundled_judge(tmp_path):
    home = tmp_path / "home"
    env = {
        **os.environ,
        "RLAIF_HOME": str(home),
        "RLAIF_DEMO_NO_APP": "1",
        "RLAIF_DEMO_LLMBAR_PAIRS": "2",
        "RLAIF_DEMO_HH_PAIRS": "2",
    }
    env.pop("RLAIF_DATABASE_URL", None)
    result = subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "300 pairs read: 300 new" in output and "100 pairs read: 100 new" in output
    assert len(list(home.glob("admin-password-*.txt"))) == 1
    with sqlite3.connect(home / "rlaif.db") as connection:
        rows = connection.execute(
            "SELECT p.source, j.status, count(*) FROM judgments j JOIN pairs p ON p.id = j.pair_id"
            " GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
        probabilities = connection.execute(
            "SELECT p_a, p_a_ab, p_a_ba, confidence, swap_inconsistent FROM judgments"
        ).fetchall()
    assert rows == [("hh-rlhf", "ok", 2), ("llmbar", "ok", 2)]
    for p_a, p_a_ab, p_a_ba, confidence, inconsistent in probabilities:
        # p_a_ba is P(A preferred) with A shown second, i.e. 1 - P(first slot) in that order,
        # so p = (p_AB + 1 - p_BA) / 2 reads as the mean of the two stored per-order values.
        assert abs(p_a - (p_a_ab + p_a_ba) / 2) < 1e-6
        assert abs(confidence - max(p_a, 1 - p_a)) < 1e-6
        assert bool(inconsistent) == ((p_a_ab > 0.5) != (p_a_ba > 0.5))
    assert "default-smollm2" in output  # `rlaif judges` and `rlaif metrics` name the judge

"""Labelling pairs into the database with a real tiny judge: selection, idempotence, resume
after a SIGKILL in the middle of a chunk, pinned versions, ensembles and the CLI."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from db.models import JudgeVersion, Judgment, LabelAudit, Pair, ResponseScore
from tests.helpers.factories import make_pairs

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, tiny_lm: Path, **extra) -> Path:
    lines = [f"model: {tiny_lm}", "device: cpu", "chunk_size: 4", "max_batch_tokens: 2000"]
    lines += [f"{key}: {value}" for key, value in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def pairs(session):
    make_pairs(session, 6, prefix="x", source="alpha")
    make_pairs(session, 4, prefix="y", source="beta")
    session.commit()
    return 10


def judgment_rows(session, version_id=None):
    query = select(Judgment).order_by(Judgment.pair_id)
    if version_id is not None:
        query = query.where(Judgment.judge_version_id == version_id)
    session.expire_all()
    return list(session.scalars(query))


def test_label_cli_selects_and_is_idempotent(cli, session, pairs, tiny_lm, tmp_path):
    config = write_config(tmp_path / "judge.yaml", tiny_lm, name="tiny")
    code, out = cli("label", "--judge", config, "--source", "beta", "--limit", "3")
    assert code == 0, out
    assert "3 of 3 pending pairs labelled (3 ok, 0 invalid, 0 failed)" in out
    rows = judgment_rows(session)
    assert [r.pair_id for r in rows] == sorted(
        session.scalars(select(Pair.id).where(Pair.source == "beta")).all()
    )[:3]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# two of alpha\nx1\n\nx4\n")
    code, out = cli("label", "--judge", config, "--pairs-file", ids_file)
    assert code == 0 and "2 of 2 pending" in out
    code, out = cli("label", "--judge", config)
    assert code == 0 and "5 of 5 pending" in out
    code, out = cli("label", "--judge", config)  # nothing left: nothing written twice
    assert code == 0 and "0 of 0 pending" in out
    assert session.scalar(select(func.count()).select_from(Judgment)) == 10
    code, out = cli("judges")
    assert code == 0 and "tiny" in out and "     10       0      0" in out
    bad = tmp_path / "bad.txt"
    bad.write_text("x1\nnope\n")
    code, out = cli("label", "--judge", config, "--pairs-file", bad)
    assert code == 2 and "bad.txt: line 2" in out and "nope" in out


def test_bad_config_is_one_clear_error(cli, sqlite_url, tmp_path):
    config = tmp_path / "judge.toml"
    config.write_text('backend = "hf"\nlabel_tokens = ["A"]\n')
    code, out = cli("label", "--judge", config)
    assert code == 2 and "judge.toml" in out and "label_tokens" in out
    code, out = cli("label", "--judge", tmp_path / "missing.yaml")
    assert code == 2 and "not a preset" in out


CRASHING_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import pipeline.judging.runner as label
    from pipeline.judging.config import JudgeConfig

    real_upsert = label.upsert_judgments
    calls = []

    def upsert_then_die(session, **kwargs):
        real_upsert(session, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            session.flush()  # chunk 2 is written in the transaction, not committed
            os.kill(os.getpid(), signal.SIGKILL)

    label.upsert_judgments = upsert_then_die
    judge = label.build_judge(JudgeConfig(name="tiny", model=sys.argv[1], device="cpu"))
    label.label_pairs(judge, chunk_size=4, progress=False)
    """
)


@pytest.mark.slow  # a subprocess that imports torch and transformers
def test_resume_after_sigkill_mid_chunk(cli, session, pairs, tiny_lm, tmp_path, db_url):
    env = {**os.environ, "RLAIF_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(tiny_lm)], env=env, cwd=ROOT, capture_output=True
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    first = judgment_rows(session)
    assert len(first) == 4  # chunk 1 committed; chunk 2 died before its commit
    before = {r.pair_id: (r.id, r.p_a, r.updated_at) for r in first}

    config = write_config(tmp_path / "judge.yaml", tiny_lm, name="tiny")
    code, out = cli("label", "--judge", config)
    assert code == 0 and "6 of 6 pending" in out, out
    rows = judgment_rows(session)
    assert len(rows) == 10 and len({r.pair_id for r in rows}) == 10
    assert session.scalar(select(func.count()).select_from(JudgeVersion)) == 1
    for row in rows:  # the committed chunk was not redone
        if row.pair_id in before:
            assert (row.id, row.p_a, row.updated_at) == before[row.pair_id]
    # The resumed labels equal an uninterrupted run's labels.
    from pipeline.judging.config import JudgeConfig
    from pipeline.judging.runner import build_judge, pair_inputs

    judge = build_judge(JudgeConfig(name="tiny", model=str(tiny_lm), device="cpu"))
    fresh = judge.judge(pair_inputs(session, [r.pair_id for r in rows]))
    assert [r.p_a for r in rows] == pytest.approx([f.p_a for f in fresh], abs=1e-6)
    assert session.scalar(select(func.count()).select_from(LabelAudit)) == 0


def test_template_change_makes_a_new_version_and_ensembles_flag_disagreement(
    cli, session, pairs, tiny_lm, tmp_path
):
    from pipeline.judging.templates import BUILTIN_DIR

    template = tmp_path / "mine.jinja"
    template.write_text((BUILTIN_DIR / "pairwise.jinja").read_text())
    config = write_config(tmp_path / "judge.yaml", tiny_lm, name="mine", template=template)
    assert cli("label", "--judge", config)[0] == 0
    assert cli("label", "--judge", config)[1].count("0 of 0 pending") == 1  # same version
    template.write_text(template.read_text().replace("careful evaluator", "strict, terse judge"))
    code, out = cli("label", "--judge", config)
    assert code == 0 and "10 of 10 pending" in out
    versions = list(session.scalars(select(JudgeVersion).order_by(JudgeVersion.id)))
    assert len(versions) == 2 and versions[0].template_hash != versions[1].template_hash
    assert versions[0].name == "mine" and versions[1].name.startswith("mine@")
    # A changed parameter is a new version too.
    assert cli("label", "--judge", config, "--tie-band", "0.1", "--limit", "1")[0] == 0
    assert session.scalar(select(func.count()).select_from(JudgeVersion)) == 3

    # Ensemble: the pair is flagged exactly where the two versions' labels differ.
    first = {r.pair_id: r.label for r in judgment_rows(session, versions[0].id)}
    second = {r.pair_id: r.label for r in judgment_rows(session, versions[1].id)}
    flags = dict(session.execute(select(Pair.id, Pair.judge_disagreement)).all())
    third = {r.pair_id: r.label for r in judgment_rows(session, 3)}
    for pair_id, flag in flags.items():
        labels = {first[pair_id], second[pair_id]} | (
            {third[pair_id]} if pair_id in third else set()
        )
        assert flag == (len(labels) > 1)
    assert any(flags.values()) or len(set(first.values()) | set(second.values())) >= 1


def test_score_command_stores_direct_scores(cli, session, pairs, tiny_lm):
    code, out = cli(
        "score", "--model", tiny_lm, "--device", "cpu", "--source", "alpha", "--limit", "5"
    )
    assert code == 0 and "5 responses scored" in out, out
    code, out = cli("score", "--model", tiny_lm, "--device", "cpu", "--source", "alpha")
    assert code == 0 and "7 responses scored" in out  # 12 responses in alpha, 5 done before
    session.expire_all()
    scores = list(session.scalars(select(ResponseScore)))
    assert len(scores) == 12
    for s in scores:
        assert -1 <= s.score <= 1 and len(s.digit_probs) == 10
        assert sum(s.digit_probs) == pytest.approx(1)
        assert s.score == pytest.approx((s.expected_rating - 1) / 4.5 - 1)
    version = session.scalar(select(JudgeVersion))
    assert version.backend == "direct" and version.confidence_kind == "expected_rating"
    code, out = cli("judges", "--json")
    assert code == 0 and '"scores": 12' in out


def test_backend_error_fails_its_chunk_and_is_retried(session, pairs, tiny_lm):
    from pipeline.errors import UserError
    from pipeline.judging.config import JudgeConfig
    from pipeline.judging.runner import build_judge, label_pairs

    real = build_judge(JudgeConfig(name="tiny", model=str(tiny_lm), device="cpu"))

    class OutOfMemoryOnce:
        """The real tiny judge; its first call raises as a GPU out-of-memory would (no GPU
        here, so this failure is simulated, and only this)."""

        identity = real.identity
        calls = 0

        def judge(self, inputs):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("CUDA out of memory")
            return real.judge(inputs)

    report = label_pairs(OutOfMemoryOnce(), chunk_size=4, progress=False)
    assert report.counts == {"ok": 6, "invalid": 0, "failed": 4}
    failed = [r for r in judgment_rows(session) if r.status == "failed"]
    assert len(failed) == 4 and failed[0].error == "RuntimeError: CUDA out of memory"
    report = label_pairs(real, chunk_size=4, progress=False)
    assert report.pending == 4 and report.counts["ok"] == 4
    assert all(r.status == "ok" for r in judgment_rows(session))

    class AlwaysBroken:
        identity = dataclasses.replace(real.identity, name="broken", params={"broken": True})

        def judge(self, inputs):
            raise RuntimeError("broken set-up")

    with pytest.raises(UserError, match="3 chunks in a row"):
        label_pairs(AlwaysBroken(), chunk_size=2, progress=False)


def test_auto_chunk_size_by_backend_and_device(tiny_lm):
    from pipeline.errors import UserError
    from pipeline.judging.backends.hf_logprob import HfLogprobJudge
    from pipeline.judging.config import JudgeConfig
    from pipeline.judging.runner import auto_chunk_size

    assert JudgeConfig().chunk_size == 0  # auto unless set
    assert auto_chunk_size(HfLogprobJudge(JudgeConfig(model=str(tiny_lm), device="cpu"))) == 16
    # A server judge has no local model; OpenAICompatJudge would contact its server when built.
    server = JudgeConfig(backend="openai", base_url="http://127.0.0.1:9/v1", concurrency=8)
    assert auto_chunk_size(SimpleNamespace(config=server)) == 32  # 4 pairs per request slot
    with pytest.raises(UserError, match="chunk_size"):
        JudgeConfig(chunk_size=-1)

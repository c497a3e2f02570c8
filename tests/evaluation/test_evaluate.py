"""Policy evaluation (`rlaif evaluate`) with real tiny policies: a policy against itself, a long
answerer against a brief one, held-out prompts, lineage, the --json shape and the judge's
re-validation warnings."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Evaluation, Judgment, Pair, Snapshot, SnapshotItem, TrainingJob
from pipeline.evaluation.policy_eval import TIE_NOTE, Decoding, EvaluateRequest, run_evaluation
from pipeline.ingest.records import sha256
from pipeline.judging.base import JudgeIdentity, combine_orders, sigmoid
from tests.helpers.factories import make_pair

PROMPTS = [f"please explain why answer {w} is good" for w in ("one", "two", "three", "four")]
MANY_PROMPTS = [f"{w} {x} {y}" for w in ("why", "how", "what", "which") for x in PROMPTS
                for y in ("one", "two", "three", "four")]  # fmt: skip


class CountingJudge:
    """Wraps a real judge and records every pair it is sent."""

    def __init__(self, inner) -> None:
        self.inner, self.identity, self.sent = inner, inner.identity, []
        self.config, self.model = inner.config, inner.model

    def judge(self, pairs):
        self.sent.extend(pairs)
        return self.inner.judge(pairs)


class LongerIsBetterJudge:
    """A judge whose verdict rests on length alone: it picks A with probability
    sigmoid((len A - len B) / 20), drawn from a generator seeded by the two texts (the same pair
    always gets the same verdict). A tiny real model cannot be made to judge this way cheaply,
    so this small class implements the judge interface (pipeline/judging/base.py) instead."""

    identity = JudgeIdentity(
        name="longer-is-better",
        backend="test",
        model_id="length",
        model_revision=None,
        template_hash=None,
        label_tokens={},
        params={},
        confidence_kind="logprob",
    )
    model = None

    class config:  # noqa: N801 - what label.auto_chunk_size reads
        concurrency = 4

    def __init__(self) -> None:
        self.sent = 0

    def judge(self, pairs):
        import random

        self.sent += len(pairs)
        rows = []
        for pair in pairs:
            p = sigmoid((len(pair.response_a) - len(pair.response_b)) / 20)
            draw = random.Random(f"{pair.response_a}|{pair.response_b}").random()
            row = combine_orders(p, p, pair_id=pair.pair_id)
            rows.append(dataclasses.replace(row, label="A" if draw < p else "B"))
        return rows


def _word_policy(tiny_lm: Path, folder: Path, word: str, bias: float) -> Path:
    """A copy of tiny_lm that says `word` one or more times, then stops: the output layer is
    zeroed (every logit ties), generation_config suppresses every other token but the end
    token, forbids stopping before the first token, and adds `bias` to the word's logit. Sampled
    at temperature 1, it repeats the word with probability sigmoid(bias) at each step."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    with torch.no_grad():
        model.lm_head.weight.zero_()
    word_id = tokenizer.convert_tokens_to_ids(word)
    allowed = {word_id, tokenizer.eos_token_id}
    config = model.generation_config
    config.suppress_tokens = [i for i in range(len(tokenizer)) if i not in allowed]
    config.min_new_tokens = 1
    config.sequence_bias = [[[word_id], bias]]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _json(out: str) -> dict:
    """The --json object (the CLI runner mixes the model-loading progress bar into stdout)."""
    return json.loads(out[out.rindex('{"policy"') :].strip())


def _prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(PROMPTS) + "\n")
    return path


def _judge_config(tmp_path: Path, tiny_lm: Path) -> Path:
    path = tmp_path / "judge.yaml"
    path.write_text(f"name: tiny-judge\nbackend: hf\nmodel: {tiny_lm}\ndevice: cpu\n")
    return path


def test_a_policy_against_itself_is_exactly_even(db_url, tiny_lm, tmp_path, cli, session):
    code, out = cli(
        "evaluate",
        "--policy",
        tiny_lm,
        "--baseline",
        tiny_lm,
        "--prompts-file",
        _prompts_file(tmp_path),
        "--judge",
        _judge_config(tmp_path, tiny_lm),
        "--max-new-tokens",
        "6",
        "--device",
        "cpu",
        "--json",
    )
    assert code == 0, out
    result = _json(out)
    assert {
        "policy",
        "baseline",
        "judge",
        "pairs",
        "ai_win_rate",
        "ai_interval",
        "lc_win_rate",
        "human_pairs",
        "ppi_win_rate",
        "ppi_interval",
        "evaluation_id",
    } <= result.keys()
    assert result["policy"] == result["baseline"] and "@sha256:" in result["policy"]
    assert result["judge"] == "tiny-judge"
    assert result["pairs"] == 4
    assert result["ai_win_rate"] == 0.5 and result["lc_win_rate"] == 0.5
    assert result["human_pairs"] == 0
    assert result["ppi_win_rate"] is None and result["ppi_interval"] is None
    # Every pair is two identical responses: a tie recorded without a judge call.
    pairs = list(session.scalars(select(Pair).where(Pair.source == "evaluation:1")))
    assert len(pairs) == 4 and all(p.response_a_id == p.response_b_id for p in pairs)
    judgments = list(session.scalars(select(Judgment)))
    assert len(judgments) == 4
    assert {(j.label, j.raw_output) for j in judgments} == {("tie", TIE_NOTE)}
    # No human labels yet: the warning says so.
    assert any("no human-labelled pairs" in w for w in result["warnings"])


def test_identical_pairs_are_never_sent_to_the_judge(db_url, tiny_lm, tmp_path, judge):
    counting = CountingJudge(judge)
    request = EvaluateRequest(
        policy=str(tiny_lm),
        baseline=str(tiny_lm),
        prompts_file=str(_prompts_file(tmp_path)),
        decoding=Decoding(max_new_tokens=5),
        device="cpu",
    )
    result = run_evaluation(request, created_by="test", judge=counting)
    assert counting.sent == []
    assert (result.pairs, result.ties, result.ai_win_rate) == (4, 4, 0.5)


def test_a_long_answerer_wins_on_length_only(db_url, tiny_lm, tmp_path):
    # P repeats "long" (goes on with probability 0.88 a step), B says "short" (0.12); 64 prompts:
    # measured here, raw 0.80 and LC 0.37 (the LC fit on 64 pairs is noisy, hence 0.15).
    long = _word_policy(tiny_lm, tmp_path / "long", "Ġlong", 2.0)
    brief = _word_policy(tiny_lm, tmp_path / "brief", "Ġshort", -2.0)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(MANY_PROMPTS))
    judge = LongerIsBetterJudge()
    request = EvaluateRequest(
        policy=str(long),
        baseline=str(brief),
        prompts_file=str(prompts),
        n=64,
        decoding=Decoding(max_new_tokens=12, sample=True, temperature=1.0, top_p=1.0, seed=1),
        device="cpu",
        seed=3,
    )
    result = run_evaluation(request, created_by="test", judge=judge)
    from db.session import session_scope

    with session_scope() as session:
        pairs = list(session.scalars(select(Pair)))
        lengths = [
            (len(p.response_a.text), len(p.response_b.text), p.meta["policy_slot"]) for p in pairs
        ]
    assert judge.sent == 64
    assert result.ai_win_rate > 0.75
    # Length alone explains the verdicts: the length-controlled rate is near 0.5.
    assert abs(result.lc_win_rate - 0.5) < 0.15
    assert any("leans on response length" in w for w in result.warnings)
    # P's slot is a seeded coin: not always A.
    assert {slot for _, _, slot in lengths} == {"A", "B"}
    # Every pair goes into the spot-check sample, for the review queue.
    from db.models import AuditSampleItem

    with session_scope() as session:
        items = session.scalars(
            select(AuditSampleItem.pair_id).where(
                AuditSampleItem.sample_id == result.audit_sample_id
            )
        ).all()
    assert len(items) == 64


def _ppo_run(session, tiny_lm: Path, tmp_path: Path, trained: list[str]) -> TrainingJob:
    """A finished PPO run as the database and its policy folder record it (the run itself is
    test_train_ppo's subject): a snapshot of the PROMPTS, `trained` recorded in lineage.json."""
    pairs = [make_pair(session, f"s{i}", prompt=p, source="seed") for i, p in enumerate(PROMPTS)]
    session.add(Snapshot(id="snap-eval", rule={}, n_human=4, n_ai=0, path=str(tmp_path)))
    session.flush()
    for pair in pairs:
        session.add(
            SnapshotItem(
                snapshot_id="snap-eval", pair_id=pair.id, label_source="human", label="A",
                p_chosen=1.0,
            )
        )  # fmt: skip
    policy = tmp_path / "run" / "policy"
    shutil.copytree(tiny_lm, policy)
    job = TrainingJob(
        kind="ppo",
        status="succeeded",
        config={},
        snapshot_id="snap-eval",
        created_by="admin",
        artifacts={"policy": str(policy)},
    )
    session.add(job)
    session.flush()
    lineage = {
        "kind": "ppo_policy",
        "job_id": job.id,
        "base_policy": str(tiny_lm),
        "snapshot": {"id": "snap-eval", "path": str(tmp_path)},
        "train_prompt_hashes": sorted(sha256(p) for p in trained),
    }
    (policy / "lineage.json").write_text(json.dumps(lineage))
    session.commit()
    return job


def test_held_out_prompts_and_lineage(db_url, tiny_lm, tmp_path, session, cli, judge):
    job = _ppo_run(session, tiny_lm, tmp_path, trained=PROMPTS[:3])
    request = EvaluateRequest(
        policy=f"job:{job.id}",
        baseline=str(tiny_lm),
        decoding=Decoding(max_new_tokens=4),
        device="cpu",
    )
    result = run_evaluation(request, created_by="test", judge=CountingJudge(judge))
    session.expire_all()
    # Only the one prompt PPO did not train on.
    pairs = list(session.scalars(select(Pair).where(Pair.source == "evaluation:1")))
    assert [p.prompt.text for p in pairs] == [PROMPTS[3]]
    # policy run -> evaluation -> pairs -> judge version, and back to the snapshot.
    (evaluation,) = session.scalars(select(Evaluation).where(Evaluation.policy_job_id == job.id))
    assert evaluation.id == result.evaluation_id
    assert evaluation.snapshot_id == job.snapshot_id == "snap-eval"
    assert evaluation.pair_source == pairs[0].source
    judged = session.scalars(select(Judgment).where(Judgment.pair_id == pairs[0].id)).one()
    assert judged.judge_version_id == evaluation.judge_version_id
    assert evaluation.audit_sample_id is None  # a tie by construction: nothing to spot-check
    assert evaluation.alignment["human_pairs"] == 0
    # The run's lineage lines name the evaluation.
    from pipeline.train.runs import lineage

    assert any(line.startswith(f"evaluation {evaluation.id}:") for line in lineage(session, job))
    # The baseline defaults to the run's base policy.
    judge_file = _judge_config(tmp_path, tiny_lm)
    code, out = cli("evaluate", "--policy", f"job:{job.id}", "--n", "1", "--json", "--judge",
                    judge_file, "--max-new-tokens", "4", "--device", "cpu")  # fmt: skip
    assert code == 0, out
    assert _json(out)["baseline"] == evaluation.baseline


def test_everything_trained_on_leaves_nothing_to_evaluate(db_url, tiny_lm, tmp_path, session, cli):
    job = _ppo_run(session, tiny_lm, tmp_path, trained=PROMPTS)
    code, out = cli("evaluate", "--policy", f"job:{job.id}", "--baseline", tiny_lm)
    assert code == 2
    assert "no held-out prompts" in out and "Traceback" not in out
    assert session.scalar(select(Evaluation.id)) is None


def test_bad_prompts_file_names_line_and_column(db_url, tiny_lm, tmp_path, cli):
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"prompt": \n')
    code, out = cli("evaluate", "--policy", tiny_lm, "--baseline", tiny_lm, "--prompts-file", bad)
    assert code == 2
    assert f"{bad}: line 2: malformed JSON at column 12" in out and "Traceback" not in out


@pytest.mark.parametrize("earlier, now, warns", [(0.9, 0.8, True), (0.83, 0.8, False)])
def test_drift_warning(session, earlier, now, warns):
    from pipeline.evaluation.judge_check import check_judge
    from tests.helpers.factories import judge_pair, label_pair, make_judge

    judge_row = make_judge(session, "j")
    for i in range(5):  # agreement 4/5 = 0.8
        pair = make_pair(session, f"d{i}")
        judge_pair(session, judge_row, pair, "A")
        label_pair(session, pair, "ann", "A" if i else "B")
    session.add(
        Evaluation(
            policy="p", policy_path="p", baseline="b", baseline_path="b",
            judge_version_id=judge_row.id, pair_source="evaluation:x", prompt_source="-",
            n_prompts=0, decoding={}, alignment={"agreement": earlier}, created_by="t",
        )
    )  # fmt: skip
    session.commit()
    check = check_judge(session, "j", judge_row.id)
    assert check.agreement == pytest.approx(now)
    assert check.human_pairs == 5
    assert any("judge drift" in w for w in check.warnings) == warns


def test_model_output_is_made_storable():
    # A tiny random policy can emit a NUL byte, which PostgreSQL refuses in a text column.
    from pipeline.evaluation.policy_eval import storable

    assert storable("fine") == "fine"
    assert storable("a\x00b\ud800c") == "a\ufffdb\ufffdc"


def test_a_cancel_wrapped_by_other_code_is_still_a_cancel():
    """The job's SIGTERM raises KeyboardInterrupt wherever the run is; landing in a class body
    during an import, Python 3.11 hands back a RuntimeError caused by it (seen in the
    cancellation test: "Error calling __set_name__ on 'Field' instance ..."). The evaluation
    is then cancelled, not failed."""
    from pipeline.evaluation.policy_eval import _interrupt_behind

    class Stops:
        def __set_name__(self, owner, name):
            raise KeyboardInterrupt("cancelled (SIGTERM)")

    try:

        class Model:  # noqa: F841 - defining it is the point
            field = Stops()

    except BaseException as error:  # noqa: BLE001 - whatever Python wraps it in
        wrapped = error
    found = _interrupt_behind(wrapped)
    assert isinstance(found, KeyboardInterrupt) and str(found) == "cancelled (SIGTERM)"
    try:
        raise ValueError("bad input") from OSError("disk")
    except ValueError as error:
        assert _interrupt_behind(error) is None

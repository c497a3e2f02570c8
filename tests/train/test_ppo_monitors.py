"""The PPO reward-hacking / collapse monitors: distinct-n and the drift rule against hand-computed
values, then tiny real PPO runs whose numbers land in the job's metric rows."""

from __future__ import annotations

import pytest

from pipeline.train import monitors as m
from tests.helpers.train_toys import toy_rows, write_snapshot


def test_distinct_n_by_hand():
    # tokens: [1 2 3] [1 2 1] [4]  -> 7 unigrams, distinct {1,2,3,4} = 4
    # bigrams: (1,2)(2,3) (1,2)(2,1) -> 4 bigrams, distinct {(1,2),(2,3),(2,1)} = 3
    samples = [[1, 2, 3], [1, 2, 1], [4]]
    assert m.distinct_n(samples, 1) == pytest.approx(4 / 7)
    assert m.distinct_n(samples, 2) == pytest.approx(3 / 4)
    assert m.distinct_n([[5], []], 2) == 0.0  # no bigram at all
    assert m.mean_length(samples) == pytest.approx(7 / 3)


def test_duplicate_share_by_hand():
    assert m.duplicate_share([[1, 2], [1, 2], [3], [1, 2]]) == pytest.approx(2 / 4)
    assert m.duplicate_share([[1], [2]]) == 0.0
    assert m.duplicate_share([]) == 0.0


def test_strip_response_drops_padding_and_cuts_at_the_stop_token():
    ids = [7, 8, 2, 9, 0, 0]
    assert m.strip_response(ids, [1, 1, 1, 1, 0, 0], stop_id=2) == [7, 8]
    assert m.strip_response(ids, [1, 1, 1, 1, 0, 0], stop_id=None) == [7, 8, 2, 9]


def test_drift_warnings_fire_past_fifty_percent_only():
    length = [(1, 4.0), (2, 5.9), (3, 6.0), (4, 6.2), (5, 9.0)]
    distinct = [(1, 0.8), (2, 0.41), (3, 0.39)]
    warnings = m.drift_warnings({m.LENGTH: length, m.DISTINCT_2: distinct})
    by_metric = {w.metric: w for w in warnings}
    # 6.0 is exactly +50 %: not more than 50 %; 6.2 is the first above
    assert by_metric[m.LENGTH].step == 4 and by_metric[m.LENGTH].now == 6.2
    assert by_metric[m.DISTINCT_2].step == 3  # 0.41 > 0.4, 0.39 < 0.4
    assert "grew +55%" in by_metric[m.LENGTH].text
    assert "fell 51%" in by_metric[m.DISTINCT_2].text
    assert m.drift_warnings({m.LENGTH: [(1, 4.0), (2, 5.0)]}) == []
    assert m.drift_warnings({}) == []


def test_divergence_needs_a_rising_score_and_a_flat_or_falling_preference():
    score = [(1, 0.1), (5, 0.9)]
    assert "possible reward hacking" in m.divergence_warning(
        {m.RM_SCORE: score, m.JUDGE_PREFERENCE: [(0, 0.5), (5, 0.45)]}
    )
    assert (
        m.divergence_warning({m.RM_SCORE: score, m.JUDGE_PREFERENCE: [(0, 0.5), (5, 0.7)]}) is None
    )
    falling = [(1, 0.9), (5, 0.1)]
    assert (
        m.divergence_warning({m.RM_SCORE: falling, m.JUDGE_PREFERENCE: [(0, 0.5), (5, 0.4)]})
        is None
    )
    assert m.divergence_warning({m.RM_SCORE: score}) is None


def test_series_from_rows_keeps_the_monitor_metrics():
    rows = [(1, "objective/kl", 0.1), (1, m.LENGTH, 3.0), (2, m.LENGTH, 4.0)]
    assert m.series_from_rows(rows) == {m.LENGTH: [(1, 3.0), (2, 4.0)]}


def _short_answer_policy(tiny_lm, folder):
    """tiny_lm taught to answer in 1-2 words then stop: room for the length to grow."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    texts = []
    for i, row in enumerate(toy_rows(16)):
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": row["prompt"]}], tokenize=False, add_generation_prompt=True
        )
        texts.append(prompt + " ".join(["good", "answer"][: 1 + i % 2]) + tokenizer.eos_token)
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


class LengthReward:
    """The reward is the response's length in tokens (in place of the d-RLAIF judge): the
    textbook reward hack, which the length monitor must catch."""

    def __init__(self, model_path, device=None, **_):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)

    def score(self, prompts, responses):
        return [float(len(self.tokenizer.encode(r, add_special_tokens=False))) for r in responses]


def _job(url: str) -> int:
    from db.models import TrainingJob
    from db.session import session_scope

    with session_scope(url) as session:
        job = TrainingJob(kind="ppo", config={}, created_by="test", status="running")
        session.add(job)
        session.flush()
        return job.id


def _series(url: str, job_id: int) -> dict[str, list[tuple[int, float]]]:
    from db.session import session_scope
    from pipeline.train.runs import metric_rows

    with session_scope(url) as session:
        return m.series_from_rows(metric_rows(session, job_id))


@pytest.mark.slow
def test_length_reward_grows_the_length_and_the_warning_fires(
    tmp_path, tiny_lm, sqlite_url, monkeypatch, capsys
):
    from pipeline.train.ppo import train_ppo
    from pipeline.train.ppo_config import PpoRunConfig

    policy = _short_answer_policy(tiny_lm, tmp_path / "policy")
    monkeypatch.setattr("pipeline.judging.backends.direct.DirectScorer", LengthReward)
    job_id = _job(sqlite_url)
    train_ppo(
        PpoRunConfig(
            snapshot=str(write_snapshot(tmp_path / "snap", toy_rows(16))),
            policy_model=str(policy),
            judge_model=str(policy),
            output_dir=str(tmp_path / "out"),
            learning_rate=3e-3,
            total_episodes=48,
            per_device_train_batch_size=8,
            num_ppo_epochs=4,
            response_length=12,
            temperature=1.0,
            kl_coef=0.0,
            missing_eos_penalty=None,
            eval_prompts=4,
            num_sample_generations=2,
            job_id=job_id,
        )
    )
    series = _series(sqlite_url, job_id)
    lengths = [v for _, v in series[m.LENGTH]]
    assert len(lengths) == 6  # one per update: 48 episodes / 8 per update
    assert lengths[-1] > 1.5 * lengths[0], lengths
    for name in (m.DISTINCT_1, m.DISTINCT_2, m.DUPLICATES):
        assert all(0.0 <= v <= 1.0 for _, v in series[name])
    assert m.RM_SCORE not in series  # a judge reward: no reward-model score
    # the probe: the reference's greedy answers are short, the policy's grow
    ratios = [v for _, v in series[m.LENGTH_RATIO]]
    assert ratios[0] == pytest.approx(1.0) and ratios[-1] > 1.0
    out = capsys.readouterr().out
    assert "WARNING: response length grew" in out
    assert any(w.metric == m.LENGTH for w in m.drift_warnings(series))


@pytest.mark.slow
def test_reward_model_run_logs_the_score_and_the_judge_preference(
    tmp_path, tiny_lm, tiny_rm, sqlite_url
):
    from pipeline.train.ppo import train_ppo
    from pipeline.train.ppo_config import PpoRunConfig

    judge = tmp_path / "judge.yaml"
    judge.write_text(f"name: tiny\nbackend: hf\nmodel: {tiny_lm}\ndevice: cpu\n")
    job_id = _job(sqlite_url)
    train_ppo(
        PpoRunConfig(
            snapshot=str(write_snapshot(tmp_path / "snap", toy_rows(16))),
            policy_model=str(tiny_lm),
            reward_model=str(tiny_rm),
            probe_judge=str(judge),
            output_dir=str(tmp_path / "out"),
            learning_rate=1e-3,
            total_episodes=8,
            per_device_train_batch_size=4,
            num_ppo_epochs=1,
            response_length=8,
            eval_prompts=4,
            num_sample_generations=1,
            job_id=job_id,
        )
    )
    series = _series(sqlite_url, job_id)
    assert len(series[m.RM_SCORE]) == 2
    preference = [v for _, v in series[m.JUDGE_PREFERENCE]]
    assert preference and all(0.0 <= v <= 1.0 for v in preference)
    # at the first probe the policy is still the reference: identical answers, exactly 0.5
    assert preference[0] == 0.5
    assert series[m.LENGTH_RATIO][0][1] == pytest.approx(1.0)


def test_training_page_draws_the_monitors_and_warns(sqlite_url):
    """A PPO run whose length doubled and whose reward rose while the judge turned away: the
    page shows both warnings beside the monitor charts (AppTest, real SQLite)."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from db.models import JobMetric, TrainingJob
    from db.session import session_scope
    from pipeline.auth import users as auth

    with session_scope(sqlite_url) as session:
        viewer = auth.create_user(session, username="vic", password="correct-horse", role="viewer")
        user = auth.AuthUser.of(viewer)
        job = TrainingJob(kind="ppo", config={}, created_by="ada", status="succeeded")
        session.add(job)
        session.flush()
        points = {
            m.LENGTH: [4.0, 5.0, 8.0],
            m.DISTINCT_2: [0.8, 0.7, 0.6],
            m.RM_SCORE: [0.1, 0.5, 0.9],
            m.JUDGE_PREFERENCE: [0.5, 0.45, 0.4],
            "objective/kl": [0.0, 0.1, 0.2],
        }
        session.add_all(
            JobMetric(job_id=job.id, step=step, name=name, value=value)
            for name, values in points.items()
            for step, value in enumerate(values, 1)
        )
    page = Path(__file__).resolve().parents[2] / "app" / "views" / "training.py"
    at = AppTest.from_file(str(page), default_timeout=60)
    at.session_state["auth_user"] = user
    at.run()
    assert not at.exception
    texts = [w.value for w in at.warning]
    assert any("response length grew +100%" in t and "step 3" in t for t in texts), texts
    assert any("possible reward hacking" in t for t in texts), texts
    assert not any("distinct-2" in t for t in texts)  # 0.6 is a 25 % fall
    titles = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any("Response length (tokens)" in spec for spec in titles)
    assert any("Judge prefers the policy" in spec for spec in titles)

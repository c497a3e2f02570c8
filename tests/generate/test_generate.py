"""Candidate generation with a real tiny policy: responses carry the policy and the sampling
parameters, pairs are formed with stable ids, and a re-run adds nothing."""

from __future__ import annotations

import itertools

from sqlalchemy import func, select

from db.models import Pair, Response
from pipeline.generate import SamplingParams, generate_candidates, pair_external_id
from tests.helpers.factories import make_pair


def test_generate_forms_pairs_and_is_idempotent(session, tiny_lm, cli):
    make_pair(session, "p1", prompt="explain why the answer is good", source="seed")
    make_pair(session, "p2", prompt="which response is better", source="seed")
    make_pair(session, "p3", prompt="rate the answer", source="other")
    session.commit()
    params = SamplingParams(n=3, max_new_tokens=6, temperature=1.0, top_p=1.0, seed=1)
    report = generate_candidates(
        str(tiny_lm), params=params, source="seed", device="cpu", progress=False
    )
    assert (report.prompts, report.responses) == (2, 6)
    assert report.pairs == 6 - 3 * report.skipped_identical  # C(3, 2) pairs per prompt
    session.expire_all()
    pairs = list(session.scalars(select(Pair).where(Pair.source == "generated")))
    assert len(pairs) == report.pairs
    for pair in pairs:
        for response in (pair.response_a, pair.response_b):
            assert response.policy_id.startswith(str(tiny_lm)) and "@sha256:" in response.policy_id
            assert response.generation_params == {
                "n": 3,
                "max_new_tokens": 6,
                "temperature": 1.0,
                "top_p": 1.0,
                "seed": 1,
            }
        assert pair.response_a_id != pair.response_b_id
        # Both responses come from the policy: a self-comparison of its policy id.
        assert pair.system_a == pair.system_b == pair.response_a.policy_id
        assert pair.prompt.text in {"explain why the answer is good", "which response is better"}
        i, j = pair.meta["sample_indices"]
        expected = pair_external_id(
            pair.prompt.text_hash,
            pair.response_a.policy_id,
            pair.response_a.generation_params,
            i,
            j,
        )
        assert pair.external_id == expected
    assert {tuple(p.meta["sample_indices"]) for p in pairs} <= set(
        itertools.combinations(range(3), 2)
    )
    # A second run finds every prompt done: no new responses, no new pairs.
    before = session.scalar(select(func.count()).select_from(Response))
    again = generate_candidates(
        str(tiny_lm), params=params, source="seed", device="cpu", progress=False
    )
    assert (again.prompts, again.pairs) == (0, 0)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Response)) == before
    # The CLI: other parameters are another generation; --limit caps the prompts.
    code, out = cli(
        "generate",
        "--policy",
        tiny_lm,
        "--n",
        "2",
        "--max-new-tokens",
        "4",
        "--limit",
        "1",
        "--device",
        "cpu",
    )
    assert code == 0 and "1 prompts, 2 responses" in out, out
    code, out = cli("generate", "--policy", tiny_lm, "--n", "1")
    assert code == 2 and "at least 2" in out

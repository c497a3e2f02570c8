"""The fast paths (one packed pair stream, length differences stored on the pair) against a
straightforward computation from the ORM rows, on a small seeded random pool: two judges,
four systems, self-comparisons, identical responses, ties, invalid and failed judgments,
judgments without a probability, human consensus and overrides, texts with non-ASCII
characters."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import minimize
from sqlalchemy import select

from db.label_rows import JudgmentRow
from db.labels import override_pair_label, upsert_human_label, upsert_judgments
from db.models import Judgment, Pair
from pipeline.evaluation import length_bias as length_bias_module
from pipeline.evaluation import outcomes, stats
from pipeline.evaluation.agreement import has_human_reference
from pipeline.evaluation.leaderboard import compute_leaderboard
from pipeline.evaluation.length_bias import LENGTH_MARGIN, length_bias
from pipeline.evaluation.ppi import ppi_interval
from pipeline.evaluation.win_rates import compute_win_rates
from tests.helpers.factories import make_judge, make_pair

SYSTEMS = ["alpha", "beta", "gamma", "δelta"]
OUTCOME = {"A": 1.0, "tie": 0.5, "B": 0.0}


def build_random_pool(session, seed: int = 3, n: int = 90) -> None:
    rng = np.random.default_rng(seed)
    judges = [make_judge(session, "j1"), make_judge(session, "j2")]
    texts = [("é" * int(rng.integers(1, 4))) + "x" * int(rng.integers(5, 400)) for _ in range(30)]
    for i in range(n):
        a, b = (str(s) for s in rng.choice(SYSTEMS, 2, replace=rng.random() < 0.15))
        text_a = texts[int(rng.integers(len(texts)))]
        text_b = text_a if rng.random() < 0.08 else texts[int(rng.integers(len(texts)))]
        pair = make_pair(
            session, f"r{i}", response_a=text_a, response_b=text_b, system_a=a, system_b=b
        )
        for judge in judges:
            if rng.random() < 0.1:
                continue  # this judge skipped the pair
            roll = rng.random()
            label = str(rng.choice(["A", "B", "tie"], p=[0.45, 0.4, 0.15]))
            row = {
                "pair_id": pair.id,
                "label": label,
                "confidence": 0.8,
                "p_a": None if rng.random() < 0.1 else float(rng.random()),
            }
            if roll < 0.05:
                row.update(label="invalid", status="invalid")
            elif roll < 0.08:
                row.update(label=None, status="failed", p_a=None)
            upsert_judgments(session, judge_version_id=judge.id, rows=[JudgmentRow(**row)])
        if rng.random() < 0.35:
            upsert_human_label(
                session,
                pair_id=pair.id,
                annotator="ann",
                label=str(rng.choice(["A", "B", "tie"])),
                source="app",
            )
        if rng.random() < 0.05:
            override_pair_label(
                session,
                pair_id=pair.id,
                actor="lead",
                reason="checked",
                label=str(rng.choice(["A", "B"])),
                expected_version=pair.version,
            )
    session.commit()


def reference_rows(session):
    """Per (judge, first, second), first < second or equal: the plain per-pair lists."""
    rows = {}
    for pair in session.scalars(select(Pair)).unique():
        if pair.system_a is None or pair.system_b is None:
            continue
        same = pair.response_a_id == pair.response_b_id
        diff = len(pair.response_a.text) - len(pair.response_b.text)
        reference = pair.override_label or pair.human_consensus
        human = 0.5 if same else OUTCOME.get(reference)
        for judgment in session.scalars(select(Judgment).where(Judgment.pair_id == pair.id)):
            valid = judgment.status == "ok" and judgment.label in OUTCOME
            ai = 0.5 if same else OUTCOME[judgment.label] if valid else None
            soft = 0.5 if same or not valid else (judgment.p_a if judgment.p_a is not None else ai)
            flip = pair.system_a > pair.system_b
            key = (judgment.judge_version_id, *sorted((pair.system_a, pair.system_b)))
            if flip:
                ai = None if ai is None else 1 - ai
                human = None if human is None else 1 - human
                soft, diff = 1 - soft, -diff
            rows.setdefault(key, []).append((ai, soft, diff, human))
            if flip:  # undo for the next judgment of this pair
                human = None if human is None else 1 - human
                diff = -diff
    return rows


def reference_lc(y: np.ndarray, d: np.ndarray) -> float:
    """The penalised logistic fit of stats.logistic_intercepts, by a general optimiser."""
    sd = d.std()
    x = np.tanh(d / (sd if sd > 0 else 1.0))

    def loss(theta):
        z = theta[0] + theta[1] * x
        return -np.sum(y * z - np.logaddexp(0, z)) + stats.LC_RIDGE / 2 * theta @ theta

    a = minimize(loss, np.zeros(2), method="BFGS", options={"gtol": 1e-10}).x[0]
    return 1 / (1 + np.exp(-a))


def test_fast_paths_match_a_straightforward_computation(db_url, session):
    build_random_pool(session)
    for pair in session.scalars(select(Pair)).unique():  # written at insert by the default
        assert pair.length_diff == len(pair.response_a.text) - len(pair.response_b.text)
    expected = reference_rows(session)
    names = {judge_id: name for judge_id, name in ((1, "j1"), (2, "j2"))}
    got = {(r.judge, r.system, r.opponent): r for r in compute_win_rates(session)}
    assert len(got) == sum(1 if a == b else 2 for _, a, b in expected)
    for (judge_id, first, second), rows in expected.items():
        row = got[(names[judge_id], first, second)]
        ai = [r[0] for r in rows if r[0] is not None]
        if first == second:
            ai = [0.5] * len(ai)
        assert (row.ai_wins, row.ai_ties, row.ai_losses) == (
            ai.count(1.0),
            ai.count(0.5),
            ai.count(0.0),
        )
        assert row.ai_invalid == len(rows) - len(ai)
        assert row.ai_win_rate == (pytest.approx(np.mean(ai)) if ai else None)
        if first == second:
            continue
        mirror = got[(names[judge_id], second, first)]
        assert mirror.ai_wins == row.ai_losses
        valid = [r for r in rows if r[0] is not None]
        if valid:
            y, d = np.array([r[0] for r in valid]), np.array([r[2] for r in valid], float)
            assert row.lc_win_rate == pytest.approx(reference_lc(y, d), abs=1e-6)
        labelled = [r for r in rows if r[3] is not None]
        ppi = ppi_interval(
            [r[3] for r in labelled], [r[1] for r in labelled], [r[1] for r in rows]
        ).ppi
        assert row.ppi_labelled == len(labelled)
        if ppi is None:
            assert row.ppi_win_rate is None
        else:
            assert row.ppi_win_rate == pytest.approx(ppi.estimate, abs=1e-9)


def test_the_length_bias_and_the_leaderboard_counts_match(db_url, session):
    build_random_pool(session, seed=5)
    pairs = list(session.scalars(select(Pair)).unique())
    for judge_id in (1, 2):
        n = longer = 0
        for pair in pairs:
            judgment = session.scalars(
                select(Judgment).where(
                    Judgment.pair_id == pair.id, Judgment.judge_version_id == judge_id
                )
            ).one_or_none()
            diff = len(pair.response_a.text) - len(pair.response_b.text)
            if (
                judgment is None
                or judgment.status != "ok"
                or judgment.label not in ("A", "B")
                or abs(diff) <= LENGTH_MARGIN
            ):
                continue
            n += 1
            longer += (judgment.label == "A") == (diff > 0)
        bias = length_bias(session, [judge_id])[judge_id]
        assert (bias.ai_length_pairs, bias.ai_picked_longer) == (n, longer)
    boards = {board.judge: board for board in compute_leaderboard(session, resamples=20)}
    rows = [r for r in compute_win_rates(session) if r.system != r.opponent]
    for board in boards.values():
        for entry in board.systems:
            mine = [r for r in rows if r.judge == board.judge and r.system == entry.system]
            assert entry.ai_pairs == sum(r.pairs for r in mine)
            wins = sum(r.ai_wins + r.ai_ties / 2 for r in mine)
            assert entry.ai_win_rate_vs_field == pytest.approx(wins / entry.ai_pairs)


def test_the_stream_without_room_to_pack_the_length_difference(db_url, session, monkeypatch):
    """Too many judges x systems for one exact float: the length difference gets its own
    column, with the same results."""
    build_random_pool(session, seed=7, n=40)
    packed = compute_win_rates(session)
    monkeypatch.setattr(outcomes, "_EXACT", 1)
    assert compute_win_rates(session) == packed


def test_import_and_generate_store_the_length_difference(session, tmp_path, cli, tiny_lm):
    """Characters, as Response.text_length counts them (code points, not bytes)."""
    from pipeline.generate import SamplingParams, generate_candidates

    rows = [
        {"id": "i1", "prompt": "q", "response_a": "ééé long", "response_b": "b", "system_a": "x",
         "system_b": "y"},
        {"id": "i2", "prompt": "q", "response_a": "a", "response_b": "a", "system_a": "x",
         "system_b": "y"},
    ]  # fmt: skip
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, out = cli("import", "pairs", path)
    assert code == 0, out
    imported_source = session.scalars(select(Pair.source)).first()
    generate_candidates(
        str(tiny_lm),
        params=SamplingParams(n=3, max_new_tokens=6, temperature=1.0, top_p=1.0, seed=1),
        source=imported_source,
        device="cpu",
        progress=False,
    )
    session.expire_all()
    pairs = list(session.scalars(select(Pair)).unique())
    assert {p.external_id: p.length_diff for p in pairs if p.source != "generated"} == {
        "i1": 7,
        "i2": 0,
    }
    generated = [p for p in pairs if p.source == "generated"]
    assert generated
    for pair in generated:
        assert pair.length_diff == pair.response_a.text_length - pair.response_b.text_length


def test_the_human_and_length_queries_read_the_partial_indexes(tmp_path):
    """The queries repeat the partial indexes' predicates word for word (SQLite uses a partial
    index only then): a change on either side would fall back to scanning every pair."""
    from sqlalchemy import text

    from db.session import get_engine, get_sessionmaker
    from pipeline.evaluation.agreement import referenced_judgments

    url = f"sqlite:///{tmp_path / 'plans.db'}"
    with get_sessionmaker(url)() as session:
        where = outcomes.SystemFilter()
        human = select(Pair.system_a).where(outcomes.has_human_outcome(), where.condition())
        referenced = select(Pair.id).where(has_human_reference())
        far = (
            select(Judgment.id)
            .select_from(referenced_judgments())
            .where(length_bias_module._far(), Judgment.judge_version_id == 1)
        )
        dialect = get_engine(url).dialect
        for query, index in (
            (human, "ix_pairs_human_outcome"),
            (referenced, "ix_pairs_human_outcome"),
            (far, "ix_pairs_length_far"),
        ):
            sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            plan = " ".join(row[3] for row in session.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert index in plan, (sql, plan)

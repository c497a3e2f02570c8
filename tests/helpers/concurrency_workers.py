"""Entry points of the processes that tests/db/test_concurrency.py starts with the spawn method:
each one is a fresh interpreter with its own engine and connections, like a second reviewer's
app session or a judge run on another machine."""

from __future__ import annotations

import json
from pathlib import Path

BARRIER_TIMEOUT_S = 120


def reviewer(url: str, user: tuple[int, str], pair_ids: list[int], label: str, barrier) -> None:
    """Label `pair_ids` one transaction each, as the review app's label button does."""
    from db.session import session_scope
    from pipeline.auth.users import AuthUser
    from pipeline.review import queue

    who = AuthUser(id=user[0], username=user[1], role="reviewer")
    with session_scope(url):
        pass  # connect and check the schema before the race starts
    barrier.wait(BARRIER_TIMEOUT_S)
    for pair_id in pair_ids:
        with session_scope(url) as session:
            queue.record_label(session, user=who, pair_id=pair_id, label=label)


class StandInJudge:
    """A judge whose model is replaced by a fixed answer (label B, confidence 0.9): the subject
    is the judge's write path (pipeline/judging/runner.py), and loading a model in every spawned
    process would only add seconds of start-up before the race."""

    def __init__(self) -> None:
        from pipeline.judging.base import JudgeIdentity

        self.identity = JudgeIdentity(
            name="stand-in",
            backend="test",
            model_id="stand-in",
            model_revision=None,
            template_hash=None,
            label_tokens={},
            params={},
            confidence_kind="imported",
        )

    def judge(self, pairs) -> list:
        from pipeline.judging.base import combine_orders

        return [combine_orders(0.1, 0.1, pair_id=p.pair_id) for p in pairs]


def judge(url: str, chunk_size: int, barrier) -> None:
    from pipeline.judging.runner import label_pairs

    stand_in = StandInJudge()
    barrier.wait(BARRIER_TIMEOUT_S)
    label_pairs(stand_in, url=url, chunk_size=chunk_size, progress=False)


def claimer(url: str, user: tuple[int, str], rounds: int, out: str, barrier) -> None:
    """Each round: open the queue at the same moment as the other reviewer (claim), then label
    the claimed pair so it leaves the queue. Writes the claimed pair ids to `out`."""
    from db.session import session_scope
    from pipeline.auth.users import AuthUser
    from pipeline.review import queue

    who = AuthUser(id=user[0], username=user[1], role="reviewer")
    claimed: list[int | None] = []
    for _ in range(rounds):
        barrier.wait(BARRIER_TIMEOUT_S)
        with session_scope(url) as session:
            view = queue.claim_next_pair(session, username=who.username)
        claimed.append(view.pair_id if view else None)
        barrier.wait(BARRIER_TIMEOUT_S)  # both hold their pair now
        if view is not None:
            with session_scope(url) as session:
                queue.record_label(session, user=who, pair_id=view.pair_id, label="A")
    Path(out).write_text(json.dumps(claimed))

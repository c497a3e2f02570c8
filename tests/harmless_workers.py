"""Entry point of the processes that tests/test_harmless_concurrency.py starts with the spawn
method: each is a fresh interpreter with its own engine, like a reviewer's second browser tab."""

from __future__ import annotations

BARRIER_TIMEOUT_S = 120


def rater(url: str, user: tuple[int, str], response_ids: list[int], label: str, barrier) -> None:
    """Rate `response_ids` one transaction each, as the Rate responses view's buttons do."""
    from db.session import session_scope
    from pipeline.auth.users import AuthUser
    from pipeline.review import rate_responses

    who = AuthUser(id=user[0], username=user[1], role="reviewer")
    with session_scope(url):
        pass  # connect and check the schema before the race starts
    barrier.wait(BARRIER_TIMEOUT_S)
    for response_id in response_ids:
        with session_scope(url) as session:
            rate_responses.record_rating(session, user=who, response_id=response_id, label=label)

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


def claimer(url: str, user: tuple[int, str], rounds: int, out: str, barrier) -> None:
    """Open the Rate responses page and rate what it shows, `rounds` times, as fast as a
    reviewer with the keyboard; writes the shown response ids to `out` (JSON)."""
    import json
    from pathlib import Path

    from db.session import session_scope
    from pipeline.auth.users import AuthUser
    from pipeline.review import rate_responses

    who = AuthUser(id=user[0], username=user[1], role="reviewer")
    with session_scope(url):
        pass
    barrier.wait(BARRIER_TIMEOUT_S)
    shown = []
    for _ in range(rounds):
        with session_scope(url) as session:
            view = rate_responses.claim_next_response(session, username=user[1], system="P")
        shown.append(None if view is None else view.response_id)
        if view is not None:
            with session_scope(url) as session:
                rate_responses.record_rating(
                    session, user=who, response_id=view.response_id, label="harmless"
                )
    Path(out).write_text(json.dumps(shown))

"""Sign-in sessions, throttling, revocation, the /signin routes, the security middleware and the
single sign-on mapping, on SQLite and PostgreSQL (the browser journeys:
tests/browser/test_browser_auth.py)."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from db.models import SignInThrottle, UserSession, utcnow
from db.session import session_scope
from pipeline.auth import sessions
from pipeline.auth import throttle as signin_throttle
from pipeline.auth import users as auth
from pipeline.auth.settings import SessionSettings, ThrottleSettings

PASSWORD = "rita-password"


@pytest.fixture
def rita(db_url) -> auth.AuthUser:
    with session_scope() as session:
        user = auth.create_user(session, username="rita", password=PASSWORD, role="reviewer")
        return auth.AuthUser.of(user)


def _new_session(user: auth.AuthUser, now=None) -> str:
    with session_scope() as session:
        return sessions.create_session(session, user, via="password", now=now)


def _resolve(token: str, now=None, settings=None):
    with session_scope() as session:
        return sessions.resolve(session, token, now=now, settings=settings)


def test_token_is_random_256_bits_and_only_its_hash_is_stored(rita):
    tokens = {_new_session(rita) for _ in range(3)}
    assert len(tokens) == 3
    for token in tokens:
        assert len(token) == 43  # 32 bytes, URL-safe base64 without padding
    with session_scope() as session:
        stored = session.scalars(select(UserSession.token_hash)).all()
    assert sorted(stored) == sorted(sessions.hash_token(t) for t in tokens)
    assert not set(stored) & tokens
    assert all(_resolve(t) == rita for t in tokens)
    assert _resolve("not-a-token") is None and _resolve("") is None


def test_idle_timeout_and_absolute_lifetime(rita):
    settings = SessionSettings(idle_hours=8, max_days=7)
    start = utcnow()
    token = _new_session(rita, now=start)
    # Unused for 8 h: ended. Used at 7 h 59 min: the idle clock starts again.
    assert _resolve(token, start + timedelta(hours=8), settings) is None
    assert _resolve(token, start + timedelta(hours=7, minutes=59), settings) == rita
    assert _resolve(token, start + timedelta(hours=15, minutes=58), settings) == rita
    # Used every 7 hours, it still ends 7 days after sign-in.
    at = start + timedelta(hours=15, minutes=58)
    while at + timedelta(hours=7) < start + timedelta(days=7):
        at += timedelta(hours=7)
        assert _resolve(token, at, settings) == rita
    assert _resolve(token, start + timedelta(days=7), settings) is None


def test_sign_out_revokes_only_that_session(rita):
    first, second = _new_session(rita), _new_session(rita)
    with session_scope() as session:
        assert sessions.revoke(session, first) is True
        assert sessions.revoke(session, first) is False
    assert _resolve(first) is None and _resolve(second) == rita


def test_role_is_read_fresh_and_deactivation_ends_every_session(rita):
    tokens = [_new_session(rita), _new_session(rita)]
    with session_scope() as session:
        auth.update_user(session, username="rita", actor=None, role="viewer")
    assert {_resolve(t).role for t in tokens} == {"viewer"}
    with session_scope() as session:
        auth.update_user(session, username="rita", actor=None, active=False)
    with session_scope() as session:
        auth.update_user(session, username="rita", actor=None, active=True)
    assert [_resolve(t) for t in tokens] == [None, None]  # reactivating does not revive them


def test_password_reset_from_the_cli_ends_every_session(rita, cli):
    token = _new_session(rita)
    code, out = cli("users", "set", "rita", "--reset-password", input="new-password\n" * 2)
    assert code == 0, out
    assert _resolve(token) is None
    with session_scope() as session:
        revoked = session.scalars(select(UserSession.revoked_at)).all()
    assert len(revoked) == 1 and revoked[0] is not None


def test_lock_seconds_double_after_five_failures():
    settings = ThrottleSettings(free_failures=5, backoff_seconds=1, backoff_max_seconds=900)
    got = [signin_throttle.lock_seconds(n, settings) for n in range(1, 17)]
    assert got == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]


def _attempt(username: str, password: str, address: str = "10.0.0.1", now=None):
    with session_scope() as session:
        return sessions.sign_in(session, username, password, address=address, now=now)


def test_throttle_per_user_name(rita):
    start = utcnow()
    for i in range(5):
        result = _attempt("rita", "wrong", address=f"10.0.0.{i}", now=start)
        assert (result.user, result.message) == (None, sessions.FAILED)
    # Locked for 1 s after the 5th failure: even the right password is not checked.
    locked = _attempt("RITA ", PASSWORD, address="10.9.9.9", now=start + timedelta(seconds=0.5))
    assert locked.user is None and locked.retry_after == pytest.approx(0.5)
    assert locked.message == "Too many failed sign-ins. Try again in 1 s."
    # The 6th failure locks for 2 s.
    _attempt("rita", "wrong", address="10.0.0.6", now=start + timedelta(seconds=1))
    again = _attempt("rita", PASSWORD, now=start + timedelta(seconds=2.5))
    assert again.retry_after == pytest.approx(0.5)
    ok = _attempt("rita", PASSWORD, address="10.0.0.7", now=start + timedelta(seconds=3))
    assert ok.user == rita and ok.token
    with session_scope() as session:  # success clears the user-name counter
        assert session.get(SignInThrottle, ("user", "rita")) is None


def test_throttle_per_address_and_unknown_names(rita):
    start = utcnow()
    for i in range(5):  # five different names, some that do not exist, from one address
        result = _attempt(f"guess{i}", "wrong", address="10.6.6.6", now=start)
        assert result.message == sessions.FAILED
    blocked = _attempt("rita", PASSWORD, address="10.6.6.6", now=start)
    assert blocked.user is None and blocked.retry_after == pytest.approx(1.0)
    assert _attempt("rita", PASSWORD, address="10.1.1.1", now=start).user == rita
    with session_scope() as session:
        row = session.get(SignInThrottle, ("address", "10.6.6.6"))
        assert row.failures == 5
        assert session.get(SignInThrottle, ("user", "guess0")).failures == 1


def test_failures_are_forgotten_after_an_hour(rita):
    start = utcnow()
    for _ in range(4):
        _attempt("rita", "wrong", now=start)
    _attempt("rita", "wrong", now=start + timedelta(seconds=3601))
    with session_scope() as session:
        assert session.get(SignInThrottle, ("user", "rita")).failures == 1


def test_unknown_user_costs_as_long_as_a_wrong_password(rita):
    def timed(name: str) -> float:
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            with session_scope() as session:
                assert auth.authenticate(session, name, "wrong-password") is None
            runs.append(time.perf_counter() - t0)
        return statistics.median(runs)

    known, unknown = timed("rita"), timed("nobody")
    assert 0.5 < unknown / known < 2, (known, unknown)  # both verify one argon2id hash


# --- single sign-on: the e-mail mapping and the hand-over of Streamlit's identity cookie ---


def test_email_maps_to_an_active_local_user(rita):
    with session_scope() as session:
        auth.update_user(session, username="rita", actor=None, email="Rita@Example.org")
        find = auth.user_for_email
        assert find(session, "rita@example.ORG", True) == rita
        assert find(session, "rita@example.org", None) == rita  # no claim: provider vouches
        assert find(session, "rita@example.org", False) is None  # marked unverified
        assert find(session, "eve@example.org", True) is None  # unknown: no access
        assert find(session, None, True) is None
        auth.update_user(session, username="rita", actor=None, active=False)
        assert find(session, "rita@example.org", True) is None


def test_email_is_unique_and_checked(rita):
    from pipeline.errors import UserError

    with session_scope() as session:
        auth.create_user(
            session, username="vic", password="password-1", role="viewer", email="v@x.org"
        )
        with pytest.raises(UserError, match="already belongs to vic"):
            auth.update_user(session, username="rita", actor=None, email="V@X.org")
        with pytest.raises(UserError, match="invalid e-mail"):
            auth.update_user(session, username="rita", actor=None, email="not-an-address")


def test_a_write_with_an_ended_session_is_refused(rita):
    """A page callback holds the user of an earlier run: the write itself checks the session."""
    from pipeline.review import queue
    from tests.helpers.factories import make_pair

    token = _new_session(rita)
    user = _resolve(token)
    with session_scope() as session:
        pair_id = make_pair(session, "p1").id
        auth.authorize(session, user, "reviewer")  # open: allowed
    with session_scope() as session:
        auth.update_user(session, username="rita", actor=None, password="another-password")
    with session_scope() as session, pytest.raises(PermissionError, match="session has ended"):
        queue.record_label(session, user=user, pair_id=pair_id, label="A", note="")


def test_session_state_user_is_ignored_outside_apptest(rita):
    """The AppTest seam: a served app (global.appTest unset) never reads st.session_state."""
    import streamlit as st

    from app import guard

    st.session_state["auth_user"] = rita
    try:
        assert guard.signed_in_user() is None
    finally:
        del st.session_state["auth_user"]


def test_server_refuses_to_start_with_the_apptest_flag():
    import runpy
    from pathlib import Path

    from streamlit.testing.v1.util import patch_config_options

    server = Path(__file__).resolve().parents[2] / "app" / "server.py"
    with patch_config_options({"global.appTest": True}), pytest.raises(SystemExit, match="appTest"):
        runpy.run_path(str(server))


def test_sign_in_prunes_ended_sessions_and_forgotten_counters(rita):
    start = utcnow()
    old = _new_session(rita, now=start - timedelta(days=8))  # past its 7-day lifetime
    _attempt("mallory", "wrong", address="10.2.2.2", now=start - timedelta(hours=2))
    _attempt("rita", "wrong", address="10.3.3.3", now=start - timedelta(minutes=5))
    assert _attempt("rita", PASSWORD, address="10.4.4.4", now=start).user == rita
    with session_scope() as session:
        hashes = session.scalars(select(UserSession.token_hash)).all()
        keys = sorted(session.execute(select(SignInThrottle.kind, SignInThrottle.key)).all())
    assert sessions.hash_token(old) not in hashes and len(hashes) == 1
    assert keys == [("address", "10.3.3.3")]  # recent; rita's name counter cleared on success

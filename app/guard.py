"""The sign-in gate every page calls first: `user = require_user()` or `require_user("admin")`.

On every script run the user is resolved from the session cookie (`rlaif_session`, set by the
sign-in route in app/signin_web.py) against the database: the session must be open, not idle
too long, within its lifetime, and the user active; the role is read fresh. A signed-out
browser is sent to /signin?next=<this page>. Pages still pass the user to pipeline functions,
which check the role again where the write happens.

Test seam: under `streamlit.testing` (AppTest, config `global.appTest`), which cannot send
cookies, a test may put an `AuthUser` in st.session_state["auth_user"]; it is re-checked against
the database like a cookie. A browser cannot reach it: the flag is never set in a served app
(app/server.py refuses to start with it) and a browser cannot put a Python object in the state.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlparse

import streamlit as st
from streamlit import config

from db.session import session_scope
from pipeline.auth import sessions
from pipeline.auth import users as auth
from pipeline.auth.users import AuthUser

SESSION_KEY = "auth_user"  # the AppTest seam only
SIGNIN_PATH = "/signin"
SIGNOUT_PATH = "/signout"


def _under_apptest() -> bool:
    return bool(config.get_option("global.appTest"))


def _cookie_token() -> str | None:
    return st.context.cookies.get(sessions.COOKIE_NAME)


def signed_in_user() -> AuthUser | None:
    """The user this browser is signed in as, read from the database now; None if signed out."""
    if _under_apptest():
        seeded = st.session_state.get(SESSION_KEY)
        if not isinstance(seeded, AuthUser):
            return None
        with session_scope() as session:
            fresh = auth.current(session, seeded)
        if fresh is None:
            del st.session_state[SESSION_KEY]
        return fresh
    token = _cookie_token()
    if not token:
        return None
    with session_scope() as session:
        return sessions.resolve(session, token)


def _redirect(url: str) -> None:
    """Send the browser to `url` (the message st.login/st.logout use to leave the app)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None:
        message = ForwardMsg()
        message.auth_redirect.url = url
        ctx.enqueue(message)


def current_path() -> str:
    """The page the browser shows (for `next`), without query."""
    url = st.context.url
    path = urlparse(url).path if url else "/"
    return path if path.startswith("/") else "/"


def send_to_sign_in() -> None:
    _redirect(f"{SIGNIN_PATH}?{urlencode({'next': current_path(), 'note': 'ended'})}")


def sign_out() -> None:
    """End this browser's session in the database, forget the run's state, leave the app."""
    token = None if _under_apptest() else _cookie_token()
    if token:
        with session_scope() as session:
            sessions.revoke(session, token)
    # Drop everything the session held (filters, the current pair): the next user starts clean.
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    _redirect(SIGNOUT_PATH)


def require_user(*roles: str) -> AuthUser:
    """The signed-in, still-active user with one of `roles` (any role if none); else st.stop()."""
    user = signed_in_user()
    if user is None:
        st.warning("Please sign in.")
        st.caption(
            "Your session has ended or you are signed out. "
            f"[Sign in again]({SIGNIN_PATH}?{urlencode({'next': current_path()})})"
        )
        send_to_sign_in()
        st.stop()
    if roles and user.role not in roles:
        st.error(f"This page needs the role {' or '.join(roles)}; you are a {user.role}.")
        st.stop()
    return user


def can_write(user: AuthUser) -> bool:
    """For hiding buttons only; the pipeline function checks again."""
    return user.role in auth.WRITE_ROLES

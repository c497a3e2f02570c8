"""The sign-in gate every page calls first: `user = require_user()` or `require_user("admin")`.

It reads the signed-in user from st.session_state and re-checks them against the database on
every run, so a deactivated user or a changed role takes effect at once. Pages still pass the
user to pipeline functions, which check the role again where the write happens.
"""

from __future__ import annotations

import streamlit as st

from db.session import session_scope
from pipeline import auth
from pipeline.auth import AuthUser

SESSION_KEY = "auth_user"


def signed_in_user() -> AuthUser | None:
    user = st.session_state.get(SESSION_KEY)
    return user if isinstance(user, AuthUser) else None


def sign_in(user: AuthUser) -> None:
    st.session_state[SESSION_KEY] = user


def sign_out() -> None:
    # Drop everything the session held (filters, the current pair): the next user starts clean.
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def require_user(*roles: str) -> AuthUser:
    """The signed-in, still-active user with one of `roles` (any role if none); else st.stop()."""
    user = signed_in_user()
    if user is None:
        st.warning("Please sign in.")
        st.stop()
    with session_scope() as session:
        fresh = auth.current(session, user)
    if fresh is None:
        sign_out()
        st.error("Your account is no longer active. Please sign in again.")
        st.stop()
    st.session_state[SESSION_KEY] = fresh
    if roles and fresh.role not in roles:
        st.error(f"This page needs the role {' or '.join(roles)}; you are a {fresh.role}.")
        st.stop()
    return fresh


def can_write(user: AuthUser) -> bool:
    """For hiding buttons only; the pipeline function checks again."""
    return user.role in auth.WRITE_ROLES

"""Users (admins only): add users, change roles, disable accounts, reset passwords, set the
e-mail that single sign-on maps to. Deactivating a user or setting a password ends every open
session of that user (pipeline.auth.users.update_user)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.guard import require_user
from db.models import ROLES
from db.session import session_scope
from pipeline.auth import users as auth
from pipeline.errors import UserError

user = require_user("admin")
st.title("Users")

with session_scope() as session:
    users = [
        {
            "user": u.username,
            "role": u.role,
            "active": u.active,
            "e-mail": u.email or "",
            "created": u.created_at,
        }
        for u in auth.list_users(session)
    ]
st.dataframe(pd.DataFrame(users), hide_index=True, key="users_table")
st.caption("Admins manage users and start training; reviewers label; viewers read.")


flash = st.session_state.pop("users_flash", None)
if flash:
    st.success(flash)


def _run(action, message: str) -> None:
    try:
        with session_scope() as session:
            action(session)
    except (UserError, PermissionError) as error:
        st.error(str(error))
    else:  # rerun, so that the table above shows the change
        st.session_state["users_flash"] = message
        st.rerun()


def _load(rows: list[dict]) -> None:
    """The chosen user's values into the change form (keyed widgets keep their own state)."""
    row = next((u for u in rows if u["user"] == st.session_state["users_edit_name"]), None)
    if row is not None:
        st.session_state["users_edit_role"] = row["role"]
        st.session_state["users_edit_active"] = row["active"]
        st.session_state["users_edit_email"] = row["e-mail"]


cols = st.columns(2)
with cols[0]:
    st.subheader("Add a user")
    name = st.text_input("User name", key="users_new_name")
    password = st.text_input("Password", type="password", key="users_new_password")
    role = st.selectbox("Role", ROLES, index=1, key="users_new_role")
    email = st.text_input("E-mail for single sign-on (optional)", key="users_new_email")
    if st.button("Add user", key="users_add", type="primary"):
        _run(
            lambda s: auth.create_user(
                s, username=name, password=password, role=role, actor=user, email=email or None
            ),
            f"Added {name.strip()} ({role}).",
        )
with cols[1]:
    st.subheader("Change a user")
    names = [u["user"] for u in users]
    if names and st.session_state.get("users_edit_name") not in names:
        st.session_state["users_edit_name"] = names[0]
        _load(users)
    target = st.selectbox("User", names, key="users_edit_name", on_change=_load, args=(users,))
    new_role = st.selectbox("Role", ROLES, key="users_edit_role")
    active = st.checkbox("Active", key="users_edit_active")
    new_email = st.text_input("E-mail for single sign-on (empty: none)", key="users_edit_email")
    new_password = st.text_input(
        "New password (leave empty to keep)", type="password", key="users_edit_password"
    )
    if st.button("Save changes", key="users_save"):
        _run(
            lambda s: auth.update_user(
                s,
                username=target,
                actor=user,
                role=new_role,
                active=active,
                password=new_password or None,
                email=new_email,
            ),
            f"Saved {target}.",
        )

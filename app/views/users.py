"""Users (admins only): add users, change roles, disable accounts, reset passwords, set the
e-mail that single sign-on maps to. Deactivating a user or setting a password ends every open
session of that user (pipeline.auth.update_user)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.guard import require_user
from db.models import ROLES
from db.session import session_scope
from pipeline import auth
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


def _run(action, message: str) -> None:
    try:
        with session_scope() as session:
            action(session)
    except (UserError, PermissionError) as error:
        st.error(str(error))
    else:
        st.success(message)


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
    target = st.selectbox("User", names, key="users_edit_name")
    current = next((u for u in users if u["user"] == target), None)
    new_role = st.selectbox(
        "Role", ROLES, index=ROLES.index(current["role"]) if current else 1, key="users_edit_role"
    )
    active = st.checkbox(
        "Active", value=current["active"] if current else True, key="users_edit_active"
    )
    new_email = st.text_input(
        "E-mail for single sign-on (empty: none)",
        value=current["e-mail"] if current else "",
        key=f"users_edit_email_{target}",
    )
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

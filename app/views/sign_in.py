"""The only page a signed-out visitor can reach."""

from __future__ import annotations

import time

import streamlit as st

from app.guard import sign_in
from db.session import session_scope
from pipeline import auth

st.title("RLAIF workbench")
st.caption("Sign in to review AI preference labels.")

with st.form("sign_in_form"):
    username = st.text_input("User name", key="sign_in_username")
    password = st.text_input("Password", type="password", key="sign_in_password")
    submitted = st.form_submit_button("Sign in", type="primary")

if submitted:
    with session_scope() as session:
        user = auth.authenticate(session, username, password)
    if user is None:
        time.sleep(0.5)  # slows down password guessing from one browser tab
        st.error("Wrong user name or password.")
    else:
        sign_in(user)
        st.rerun()

st.caption("No account yet? An admin adds one with `rlaif users add NAME --role reviewer`.")

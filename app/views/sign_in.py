"""The only page a signed-out visitor's script run shows: the sign-in form itself is served by
the web server at /signin (app/signin_web.py), which can set an HttpOnly cookie; this page sends
the browser there, back to the page it asked for after sign-in."""

from __future__ import annotations

import streamlit as st

from app.guard import require_user

st.title("RLAIF workbench")
require_user()  # signed out: "Please sign in.", a link, and the browser goes to /signin

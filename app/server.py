"""The web server `rlaif app` runs: Streamlit's app (app/main.py) as an st.App (Starlette), with
the sign-in routes (app/signin_web.py) and the security middleware (app/security.py).

    streamlit run app/server.py --server.port 8501     # what `rlaif app` does
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts only app/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from app.security import SecurityMiddleware  # noqa: E402
from app.signin_web import ROUTES  # noqa: E402

MAIN = Path(__file__).resolve().parent / "main.py"

if st.config.get_option("global.appTest"):  # would open app/guard.py's test seam
    raise SystemExit("refusing to serve the app with global.appTest set")

app = st.App(str(MAIN), routes=ROUTES, middleware=[Middleware(SecurityMiddleware)])

"""Entry script of the review app (`rlaif app`): the sign-in gate, the router and the sidebar.

Signed-out users get only the sign-in page (which sends the browser to the /signin form of
app/signin_web.py); the user is resolved from the session cookie on every run (app/guard.py).
Signed-in users get the pages of app/views/ their role may see, grouped by task; each page
still calls `require_user` itself before it reads anything. Never a `pages/` folder: Streamlit
discovers one beside the entry script, and on a fresh server its pages open by URL without this
script's sign-in gate.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts only app/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.guard import sign_out, signed_in_user  # noqa: E402

VIEWS = Path(__file__).resolve().parent / "views"

# (section, module, title, roles that see it in the menu: None = everyone)
PAGES: list[tuple[str, str, str, tuple[str, ...] | None]] = [
    ("Review", "home", "Home", None),
    ("Review", "queue", "Review queue", None),
    ("Review", "audit", "Spot-check sample", None),
    ("Review", "rate_responses", "Rate responses", None),
    ("Data", "browse", "Browse pairs", None),
    ("Audit", "alignment", "Alignment", None),
    ("Audit", "win_rates", "Win rates", None),
    ("Train", "training", "Training", None),
    ("Admin", "users", "Users", ("admin",)),
]


def _page(module: str, title: str) -> st.Page:
    return st.Page(
        str(VIEWS / f"{module}.py"),
        title=title,
        url_path=module,
        default=module == "home",
    )


def navigation_for(role: str) -> dict[str, list[st.Page]]:
    sections: dict[str, list[st.Page]] = {}
    for section, module, title, roles in PAGES:
        if roles is not None and role not in roles:
            continue
        sections.setdefault(section, []).append(_page(module, title))
    return sections


# Pages have no icons: Streamlit turns a page's icon into the favicon, and fetches a
# :material/...: one from Google's font CDN, which the Content-Security-Policy (app/security.py)
# refuses. An emoji favicon is drawn locally (a data: URL).
st.set_page_config(page_title="RLAIF workbench", page_icon="⚖️", layout="wide")

user = signed_in_user()
if user is None:
    st.navigation([st.Page(str(VIEWS / "sign_in.py"), title="Sign in")]).run()
else:
    with st.sidebar:
        st.markdown(f"Signed in as **{user.username}** ({user.role})")
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            sign_out()  # revokes the session and sends the browser to /signout
            st.stop()
    st.navigation(navigation_for(user.role)).run()

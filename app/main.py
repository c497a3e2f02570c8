"""Entry script of the review app (`rlaif app`): the sign-in gate, the router and the sidebar.

Signed-out users get only the sign-in page. Signed-in users get every page module that exists
in app/views/, grouped by task; each page still calls `require_user` itself before it reads
anything (see the Streamlit pitfall in DESIGN.md: never a `pages/` folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts only app/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.guard import require_user, sign_out, signed_in_user  # noqa: E402

VIEWS = Path(__file__).resolve().parent / "views"

# (section, module, title, icon, roles that see it in the menu: None = everyone)
PAGES: list[tuple[str, str, str, str, tuple[str, ...] | None]] = [
    ("Review", "home", "Home", ":material/home:", None),
    ("Review", "queue", "Review queue", ":material/rate_review:", None),
    ("Review", "audit", "Spot-check sample", ":material/fact_check:", None),
    ("Data", "browse", "Browse pairs", ":material/table_view:", None),
    ("Audit", "alignment", "Alignment", ":material/monitoring:", None),
    ("Audit", "win_rates", "Win rates", ":material/leaderboard:", None),
    ("Train", "training", "Training", ":material/model_training:", None),
    ("Admin", "users", "Users", ":material/manage_accounts:", ("admin",)),
]


def _page(module: str, title: str, icon: str) -> st.Page:
    return st.Page(
        str(VIEWS / f"{module}.py"),
        title=title,
        icon=icon,
        url_path=module,
        default=module == "home",
    )


def navigation_for(role: str) -> dict[str, list[st.Page]]:
    sections: dict[str, list[st.Page]] = {}
    for section, module, title, icon, roles in PAGES:
        if not (VIEWS / f"{module}.py").exists():
            continue  # pages written by other issues join the menu once they exist
        if roles is not None and role not in roles:
            continue
        sections.setdefault(section, []).append(_page(module, title, icon))
    return sections


st.set_page_config(page_title="RLAIF workbench", page_icon=":material/balance:", layout="wide")

if signed_in_user() is None:
    st.navigation(
        [st.Page(str(VIEWS / "sign_in.py"), title="Sign in", icon=":material/login:")]
    ).run()
else:
    user = require_user()
    with st.sidebar:
        st.markdown(f"Signed in as **{user.username}** ({user.role})")
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            sign_out()
            st.rerun()
    st.navigation(navigation_for(user.role)).run()

"""Home: counts, judge versions, the last Argilla sync, and what to do next."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.guard import require_user
from app.render import inline_text
from db.enums import SyncStatus
from db.session import session_scope
from pipeline.review.overview import overview
from pipeline.review.types import COUNT_CAP

user = require_user()

with session_scope() as session:
    info = overview(session, username=user.username)

st.title("RLAIF workbench")
cols = st.columns(4)
cols[0].metric("Pairs", f"{info.pairs:,}")
cols[1].metric("Judged by AI", f"{info.judged:,}")
cols[2].metric("Human-labelled", f"{info.human_labelled:,}")
waiting = f"{COUNT_CAP:,}+" if info.in_queue_for_you > COUNT_CAP else f"{info.in_queue_for_you:,}"
cols[3].metric("In your review queue", waiting)
rule = f"A pair leaves the queue after {info.required_labels} human label(s)"
if info.auto_accept is not None:
    rule += f"; AI labels with confidence ≥ {info.auto_accept:.2f} are auto-accepted"
st.caption(rule + ".")

st.subheader("What to do next")
for step in info.next_steps() or ["Nothing waits for you. Browse the pairs or check alignment."]:
    st.markdown(f"- {step}")

st.subheader("Judge versions")
if info.judges:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "name": j.name,
                    "backend": j.backend,
                    "model": j.model_id,
                    "confidence": j.confidence_kind,
                    "ok": j.ok,
                    "invalid": j.invalid,
                    "failed": j.failed,
                    "created": j.created_at,
                }
                for j in info.judges
            ]
        ),
        hide_index=True,
        key="home_judges",
    )
else:
    st.info("No judge has labelled anything yet.")

st.subheader("Argilla")
if info.last_sync is None:
    st.caption("No Argilla sync has run yet (`rlaif argilla sync`).")
else:
    run = info.last_sync
    text = f"Last {run.direction} at {run.started_at:%Y-%m-%d %H:%M} UTC: **{run.status}**"
    text += f" (pushed {run.pushed:,}, pulled {run.pulled:,})"
    if run.status == SyncStatus.FAILED:
        st.error(text + f". Error: {inline_text(run.error)}")
    else:
        st.markdown(text)

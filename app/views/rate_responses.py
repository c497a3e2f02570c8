"""Rate responses: one response of a system at a time; h (harmless), x (harmful) or s (skip)
records and moves on. The human side of the harmless rate (Win rates page, `rlaif harmless`)."""

from __future__ import annotations

import streamlit as st

from app.answer_bar import answer_bar
from app.guard import can_write, require_user
from app.render import fmt, inline_text, text_box
from db.session import session_scope
from pipeline.errors import UserError
from pipeline.review import rate_responses
from pipeline.review.rate_responses import VerdictView

user = require_user()
ANSWERS = [("harmless", "Harmless", "h"), ("harmful", "Harmful", "x")]


def _answer(response_id: int, label: str | None) -> None:
    """Button callback: runs before the rerun, so the next render already shows the next one."""
    note = st.session_state.get("rate_note", "")
    try:
        with session_scope() as session:
            if label is None:
                rate_responses.record_skip(session, user=user, response_id=response_id, note=note)
            else:
                rate_responses.record_rating(
                    session, user=user, response_id=response_id, label=label, note=note
                )
    except (PermissionError, UserError) as error:
        st.session_state["rate_flash"] = ("error", f"Not saved: {inline_text(error)}")
        return
    st.session_state["rate_note"] = ""
    done = "skipped" if label is None else f"rated {label}"
    st.session_state["rate_flash"] = ("success", f"Response {response_id} {done}.")


def _verdicts(verdicts: list[VerdictView]) -> None:
    st.markdown("**Harmless judge**")
    if not verdicts:
        st.info("No judge verdict yet: `rlaif harmless --system NAME`.")
        return
    for number, v in enumerate(verdicts):
        with st.container(border=True, key=f"rate_verdict_{number}"):
            st.markdown(
                f"**{inline_text(v.judge_name)}**: **{inline_text(v.verdict or v.status)}**"
            )
            notes = [f"P(harmless) {fmt(v.p_harmless)}", f"confidence {fmt(v.confidence)}"]
            if v.error:
                notes.append(f"error: {inline_text(v.error)}")
            st.caption(" · ".join(notes))


st.title("Rate responses")
st.caption(
    "Is this response harmless? Responses come in a fixed random order, those nobody rated "
    "first, so that the rated ones are a fair sample for the PPI-corrected harmless rate."
)
with session_scope() as session:
    systems = rate_responses.systems(session)
if not systems:
    st.info("No pairs name their systems yet (columns `system_a`, `system_b`).")
    st.stop()
system = st.selectbox("System", systems, key="rate_system")
with session_scope() as session:
    if can_write(user):  # a reviewer holds the response they see: others are shown another
        view = rate_responses.claim_next_response(session, username=user.username, system=system)
    else:
        view = rate_responses.next_response(session, username=user.username, system=system)
    progress = rate_responses.progress(session, username=user.username, system=system)

flash = st.session_state.pop("rate_flash", None)
if flash:
    (st.success if flash[0] == "success" else st.error)(flash[1])
st.caption(
    f"{progress.rated:,} of {progress.responses:,} responses of {inline_text(system)} rated "
    f"by someone, {progress.by_you:,} by you"
)
if view is None:
    st.success("Nothing left for you to rate in this system. Thank you!")
    st.stop()

st.caption(f"response id {view.response_id} · {view.human_ratings} rating(s) so far")
if can_write(user):
    answer_bar("rate", ANSWERS, view.response_id, _answer)
    st.caption("Keys: **h** harmless · **x** harmful · **s** skip")
else:
    st.info("You are a viewer: you can read responses but not rate them.")

plain = st.toggle("Show as plain text", key="rate_plain")
text_box("Prompt", view.prompt, height=160, key="rate_prompt", plain=plain)
left, side = st.columns([8, 3])
with left:
    text_box("Response", view.response, key="rate_response", plain=plain)
with side:
    _verdicts(view.verdicts)

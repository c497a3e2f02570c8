"""Review queue: one pair at a time, most urgent first; a, b, t or s records and moves on."""

from __future__ import annotations

import streamlit as st

from app.answer_bar import answer_bar
from app.guard import can_write, require_user
from app.render import inline_text, judgment_panel, text_box
from db.session import session_scope
from pipeline.review import queue
from pipeline.review.reads import filter_choices
from pipeline.review.types import COUNT_CAP, MAX_REQUIRED_LABELS, QueueFilters

user = require_user()
ANSWERS = [("A", "A is better", "a"), ("B", "B is better", "b"), ("tie", "Tie", "t")]


def _filters(choices: dict) -> QueueFilters:
    judges = dict(choices["judges"])
    with st.expander("Filters", expanded=False):
        cols = st.columns(3)
        judge = cols[0].selectbox(
            "Judge version",
            [None, *judges],
            format_func=lambda j: "any" if j is None else judges[j],
            key="queue_judge",
        )
        source = cols[1].selectbox(
            "Source",
            [None, *choices["sources"]],
            format_func=lambda s: "any" if s is None else s,
            key="queue_source",
        )
        lo, hi = cols[2].slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.05, key="queue_conf")
        cols = st.columns(2)
        meta_key = cols[0].text_input("Metadata field", key="queue_meta_key").strip()
        meta_value = cols[1].text_input("equals", key="queue_meta_value")
    return QueueFilters(
        judge_version_id=judge,
        source=source,
        meta_key=meta_key or None,
        meta_value=meta_value if meta_key else None,
        min_confidence=lo if lo > 0.0 else None,
        max_confidence=hi if hi < 1.0 else None,
        audit_sample_id=st.session_state.get("queue_sample_id"),
    )


def _answer(pair_id: int, label: str | None) -> None:
    """Button callback: runs before the rerun, so the next render already shows the next pair."""
    note = st.session_state.get("queue_note", "")
    try:
        with session_scope() as session:
            if label is None:
                queue.record_skip(session, user=user, pair_id=pair_id, note=note)
            else:
                queue.record_label(session, user=user, pair_id=pair_id, label=label, note=note)
    except PermissionError as error:
        st.session_state["queue_flash"] = ("error", f"Not saved: {inline_text(error)}")
        return
    st.session_state["queue_note"] = ""
    done = "skipped" if label is None else f"labelled {label}"
    st.session_state["queue_flash"] = ("success", f"Pair {pair_id} {done}.")


st.title("Review queue")
with session_scope() as session:
    choices = filter_choices(session)
filters = _filters(choices)
if filters.audit_sample_id is not None:
    cols = st.columns([4, 1])
    cols[0].info(f"Labelling spot-check sample #{filters.audit_sample_id} only.")
    if cols[1].button("Whole queue", key="queue_clear_sample"):
        del st.session_state["queue_sample_id"]
        st.rerun()

with session_scope() as session:
    if can_write(user):  # a reviewer holds the pair they see, so the next one is shown another
        pair = queue.claim_next_pair(session, username=user.username, filters=filters)
    else:
        pair = next(iter(queue.next_pairs(session, username=user.username, filters=filters)), None)
    waiting = queue.queue_size(session, username=user.username, filters=filters)
    k = queue.required_labels(session)

flash = st.session_state.pop("queue_flash", None)
if flash:
    (st.success if flash[0] == "success" else st.error)(flash[1])

if pair is None:
    st.success("Nothing left in your queue with these filters. Thank you!")
    st.stop()

count = f"{COUNT_CAP:,}+" if waiting > COUNT_CAP else f"{waiting:,}"
st.caption(
    f"{count} pair(s) wait for you · pair {inline_text(pair.external_id)} (id {pair.pair_id}, "
    f"source {inline_text(pair.source)}) · why here: {pair.reason} · "
    f"{pair.human_label_count}/{k} human labels"
)
if can_write(user):
    answer_bar("queue", ANSWERS, pair.pair_id, _answer)
    st.caption("Keys: **a** A better · **b** B better · **t** tie · **s** skip")
else:
    st.info("You are a viewer: you can read the queue but not label.")

plain = st.toggle("Show as plain text", key="queue_plain")
text_box("Prompt", pair.prompt, height=160, key="queue_prompt", plain=plain)
left, right, side = st.columns([5, 5, 3])
with left:
    text_box("Response A", pair.response_a, key="queue_resp_a", plain=plain)
with right:
    text_box("Response B", pair.response_b, key="queue_resp_b", plain=plain)
with side:
    st.markdown("**AI judgment**")
    judgment_panel(pair.judgments, key="queue_judgment")
    if pair.meta:
        with st.expander("Metadata"):
            st.json(pair.meta)

if user.role == "admin":
    with st.expander("Queue settings (admin)"), st.form("queue_settings"):
        with session_scope() as session:
            threshold = queue.auto_accept_threshold(session)
        required = st.number_input(
            "Human labels required per pair", 1, MAX_REQUIRED_LABELS, k, key="queue_k"
        )
        auto = st.number_input(
            "Auto-accept AI labels with confidence at least (0 = never)",
            0.0,
            1.0,
            threshold or 0.0,
            0.01,
            key="queue_auto",
        )
        if st.form_submit_button("Save settings"):
            with session_scope() as session:
                queue.update_queue_settings(
                    session,
                    user=user,
                    required=int(required),
                    auto_accept=auto if auto > 0 else None,
                    clear_auto_accept=auto == 0,
                )
            st.rerun()

"""Browse all pairs (SQL pagination, filters, sort, search); open one for its history and to
override its label with a reason."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.guard import can_write, require_user
from app.render import inline_text, judgment_panel, text_box
from db.models import LABELS
from db.session import session_scope
from pipeline.errors import UserError
from pipeline.review import browse
from pipeline.review.reads import filter_choices
from pipeline.review.types import COUNT_CAP

user = require_user()
st.title("Browse pairs")

with session_scope() as session:
    choices = filter_choices(session)
    systems = browse.system_choices(session)
judges = dict(choices["judges"])

with st.expander("Search, filter and sort", expanded=True):
    cols = st.columns([3, 2, 2, 2])
    text = cols[0].text_input("Search prompt, responses or external id", key="browse_text")
    sort = cols[1].selectbox("Sort", list(browse.SORTS), key="browse_sort")
    human = cols[2].selectbox("Human label", browse.HUMAN_FILTERS, key="browse_human")
    source = cols[3].selectbox(
        "Source",
        [None, *choices["sources"]],
        format_func=lambda s: s or "any",
        key="browse_source",
    )
    cols = st.columns([2, 2, 2, 2, 2])
    judge = cols[0].selectbox(
        "Judge version",
        [None, *judges],
        format_func=lambda j: "any" if j is None else judges[j],
        key="browse_judge",
    )
    ai_label = cols[1].selectbox(
        "AI label",
        [None, *LABELS, "invalid"],
        format_func=lambda s: s or "any",
        key="browse_ai",
    )
    flag = cols[2].selectbox("Flags", ["any", "swap-inconsistent", "overridden"], key="browse_flag")
    lo, hi = cols[3].slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.05, key="browse_conf")
    page_size = cols[4].selectbox("Rows per page", [25, 50, 100, 200], index=1, key="browse_size")
    cols = st.columns([2, 2, 2])
    meta_key = cols[0].text_input("Metadata field", key="browse_meta_key").strip()
    meta_value = cols[1].text_input("equals", key="browse_meta_value")
    system = cols[2].selectbox(
        "System (either response)",
        [None, *systems],
        format_func=lambda s: s or "any",
        key="browse_system",
    )

filters = browse.BrowseFilters(
    text=text or None,
    source=source,
    judge_version_id=judge,
    ai_label=ai_label,
    human=human,
    overridden=True if flag == "overridden" else None,
    swap_inconsistent=True if flag == "swap-inconsistent" else None,
    min_confidence=lo if lo > 0.0 else None,
    max_confidence=hi if hi < 1.0 else None,
    meta_key=meta_key or None,
    meta_value=meta_value if meta_key else None,
    system=system,
)
# A new query starts at page 1.
query_id = repr((filters, sort, page_size))
if st.session_state.get("browse_query") != query_id:
    st.session_state["browse_query"] = query_id
    st.session_state["browse_page"] = 1
page_no = st.session_state["browse_page"]

with session_scope() as session:
    result = browse.browse(session, filters=filters, sort=sort, page=page_no, page_size=page_size)

total = f"{COUNT_CAP:,}+" if result.total > COUNT_CAP else f"{result.total:,}"
first = (page_no - 1) * page_size + 1
st.caption(f"{total} pairs match · rows {first:,}–{first + len(result.rows) - 1:,}")
frame = pd.DataFrame(
    [
        {
            "id": r.pair_id,
            "external id": r.external_id,
            "source": r.source,
            "system A": r.system_a,
            "system B": r.system_b,
            "prompt": r.prompt,
            "AI labels": r.ai_labels,
            "human labels": r.human_labels,
            "consensus": r.human_consensus,
            "override": r.override_label,
            "min confidence": r.min_confidence,
            "swap-inconsistent": r.swap_inconsistent,
        }
        for r in result.rows
    ]
)
st.dataframe(frame, hide_index=True, key="browse_table", height=360)
cols = st.columns([1, 1, 6])
if cols[0].button("◀ Previous", disabled=page_no <= 1, key="browse_prev"):
    st.session_state["browse_page"] = page_no - 1
    st.rerun()
if cols[1].button("Next ▶", disabled=not result.has_next, key="browse_next"):
    st.session_state["browse_page"] = page_no + 1
    st.rerun()

pair_id = st.selectbox(
    "Open a pair",
    [None, *(r.pair_id for r in result.rows)],
    format_func=lambda p: "–" if p is None else f"{p}",
    key="browse_open",
)
if pair_id is None:
    st.stop()

with session_scope() as session:
    detail = browse.pair_detail(session, pair_id)
pair = detail.pair
# The version this reader saw first: an override is checked against it (optimistic locking).
version_key = f"browse_version_{pair_id}"
st.session_state.setdefault(version_key, pair.version)

st.subheader(f"Pair {inline_text(pair.external_id)} (id {pair.pair_id})")
st.caption(
    f"source {inline_text(pair.source)} · consensus {pair.human_consensus or '–'} · "
    f"override {pair.override_label or '–'} · version {pair.version}"
)
text_box("Prompt", pair.prompt, height=160, key=f"browse_prompt_{pair_id}")
left, right, side = st.columns([5, 5, 3])
with left:
    text_box("Response A", pair.response_a, key=f"browse_a_{pair_id}")
with right:
    text_box("Response B", pair.response_b, key=f"browse_b_{pair_id}")
with side:
    judgment_panel(pair.judgments, key=f"browse_judgment_{pair_id}")

st.markdown("**Human labels**")
if detail.human_labels:
    st.dataframe(pd.DataFrame(detail.human_labels), hide_index=True, key=f"humans_{pair_id}")
else:
    st.caption("None yet.")
st.markdown("**History** (audit log, oldest first)")
st.dataframe(
    pd.DataFrame(
        [
            {
                "at": h.at,
                "kind": h.kind,
                "actor": h.actor,
                "from": h.old_value,
                "to": h.new_value,
                "reason": h.reason,
            }
            for h in detail.history
        ],
        columns=["at", "kind", "actor", "from", "to", "reason"],
    ),
    hide_index=True,
    key=f"history_{pair_id}",
)

if not can_write(user):
    st.info("You are a viewer: overriding labels needs the reviewer or admin role.")
    st.stop()

st.markdown("**Override the label**")
with st.form(f"override_form_{pair_id}"):
    label = st.radio("Final label", LABELS, horizontal=True, key=f"override_label_{pair_id}")
    reason = st.text_area(
        "Reason (required, goes to the audit log)", key=f"override_reason_{pair_id}"
    )
    save = st.form_submit_button("Save override", key=f"override_save_{pair_id}")
if save:
    try:
        with session_scope() as session:
            outcome = browse.override(
                session,
                user=user,
                pair_id=pair_id,
                label=label,
                reason=reason,
                expected_version=st.session_state[version_key],
            )
    except (UserError, PermissionError) as error:
        st.error(inline_text(error))
    else:
        if outcome.applied:
            st.session_state[version_key] = outcome.version
            st.success(inline_text(outcome.message))
        else:
            st.error(inline_text(outcome.message))
if st.button(
    "Reload this pair",
    key=f"browse_reload_{pair_id}",
    help="Take the newest version as the one you decide on",
):
    del st.session_state[version_key]
    st.rerun()

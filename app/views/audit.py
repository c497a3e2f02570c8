"""Spot-check samples: draw a seeded, confidence-stratified sample; follow its progress and its
unbiased agreement estimate; label it through the review queue."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from app.guard import can_write, require_user
from app.render import fmt, inline_text
from db.session import session_scope
from pipeline.errors import UserError
from pipeline.review import spot_check
from pipeline.review.reads import filter_choices

user = require_user()
st.title("Spot-check sample")
st.caption(
    "The review queue shows the hardest pairs first, so agreement measured there is biased. "
    "A random sample, stratified by the judge's confidence, gives an unbiased estimate of how "
    "often the judge agrees with people across the whole pool."
)

with session_scope() as session:
    judges = dict(filter_choices(session)["judges"])

if can_write(user):
    with st.expander("Draw a new sample", expanded=True):
        if not judges:
            st.info("No judge version yet: run `rlaif label` or import judgments first.")
        else:
            cols = st.columns([3, 1, 1, 3])
            judge = cols[0].selectbox(
                "Judge version", list(judges), format_func=judges.get, key="audit_judge"
            )
            size = cols[1].number_input("Pairs", 1, spot_check.MAX_SAMPLE, 100, key="audit_size")
            seed = cols[2].number_input("Seed", 0, 2**31 - 1, 0, key="audit_seed")
            name = cols[3].text_input("Name (optional)", key="audit_name")
            if st.button("Draw sample", key="audit_draw", type="primary"):
                try:
                    with session_scope() as session:
                        sample = spot_check.draw_audit_sample(
                            session,
                            user=user,
                            judge_version_id=judge,
                            size=int(size),
                            seed=int(seed),
                            name=name,
                        )
                        drawn, sample_name = sample.size, sample.name
                    st.success(f"Drew {drawn} pairs as “{inline_text(sample_name)}”.")
                except (UserError, PermissionError) as error:
                    st.error(inline_text(error))

with session_scope() as session:
    samples = spot_check.list_samples(session)
if not samples:
    st.info("No sample drawn yet.")
    st.stop()


def _estimate(s: spot_check.SampleResult) -> str:
    if s.estimate is None:
        return "–"
    lo, hi = s.ci95
    return f"{s.estimate:.1%} (95% CI {lo:.1%}–{hi:.1%})"


st.subheader("Samples")
st.dataframe(
    pd.DataFrame(
        [
            {
                "id": s.id,
                "name": s.name,
                "judge": s.judge_name,
                "seed": s.seed,
                "labelled": f"{s.labelled}/{s.size}",
                "agreement (stratified)": _estimate(s),
                "agreement (unweighted)": fmt(s.unweighted, 3),
                "drawn by": s.created_by,
                "drawn at": s.created_at,
            }
            for s in samples
        ]
    ),
    hide_index=True,
    key="audit_samples",
)

by_id = {s.id: s for s in samples}
chosen = st.selectbox(
    "Sample", list(by_id), format_func=lambda i: f"#{i} {by_id[i].name}", key="audit_pick"
)
result = by_id[chosen]
st.progress(
    result.labelled / result.size if result.size else 0.0,
    text=f"{result.labelled} of {result.size} labelled",
)
strata = pd.DataFrame(
    [
        {
            "confidence bin": s.label,
            "pairs in pool": s.population,
            "sampled": s.sampled,
            "weight": round(s.population / s.sampled, 3) if s.sampled else None,
            "labelled": s.labelled,
            "agree": s.agree,
            "agreement": s.agree / s.labelled if s.labelled else None,
        }
        for s in result.strata
    ]
)
st.dataframe(strata, hide_index=True, key="audit_strata")
st.download_button(
    "Download strata as CSV",
    strata.to_csv(index=False),
    f"audit_sample_{chosen}.csv",
    "text/csv",
    key="audit_csv",
)
if result.estimate is not None:
    st.markdown(
        f"Estimated agreement of **{inline_text(result.judge_name)}** with people: "
        f"**{_estimate(result)}**, "
        f"weighting each confidence bin by its share of the pool. Unweighted: "
        f"{result.unweighted:.1%}. An invalid or failed AI label counts as a disagreement."
    )
labelling = can_write(user) and result.labelled < result.size
if labelling and st.button("Label this sample in the review queue", key="audit_label_sample"):
    st.session_state["queue_sample_id"] = chosen
    try:
        st.switch_page("views/queue.py")
    except StreamlitAPIException:  # run outside the router (e.g. a page test)
        st.info("Open the **Review queue**: it now shows this sample's pairs only.")

"""Alignment: how far each judge version agrees with the humans, how well its confidence is
calibrated, where to put the auto-accept threshold, drift, a PPI interval and position bias.

All numbers come from pipeline/evaluation/alignment.py; the metrics table is the
`rlaif metrics --json` computation itself. Every figure has a CSV download.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import altair as alt
import pandas as pd
import streamlit as st

from app.guard import require_user
from app.render import csv_download, fmt, inline_text
from db.session import database_url, session_scope
from pipeline.evaluation import alignment
from pipeline.evaluation.agreement import metrics_rows_for_table
from pipeline.review.queue import auto_accept_threshold

user = require_user()

METRIC_COLUMNS = [
    "judge",
    "judged",
    "pairs_compared",
    "agreement",
    "cohen_kappa",
    "ai_invalid",
    "ai_failed",
    "not_judged",
    "invalid_total",
    "failed_total",
    "human_consensus_pairs",
]


@st.cache_data(ttl=30, show_spinner="Computing alignment…")
def load_report(
    url: str,
    names: tuple[str, ...],
    bins: int,
    bucket: str,
    samples: tuple[tuple[int, int | None], ...],
    alpha: float,
) -> alignment.AlignmentReport:
    # Keyed by the database URL and the options; cached 30 s (the Refresh button clears it).
    with session_scope(url) as session:
        return alignment.alignment_report(
            session,
            list(names),
            bins=bins,
            time_bucket=bucket,
            sample_ids=dict(samples),
            alpha=alpha,
        )


def share_bars(df: pd.DataFrame, columns: list[str], series: str, title: str) -> None:
    """Bars of shares in [0, 1], the `columns` side by side for each judge (none: no chart)."""
    shares = df.melt(id_vars=["judge"], value_vars=columns, var_name=series).dropna()
    if shares.empty:
        return
    st.altair_chart(
        alt.Chart(shares)
        .mark_bar()
        .encode(
            x=alt.X(f"{series}:N", title=None),
            y=alt.Y("value:Q", title=title, scale=alt.Scale(domain=[0, 1])),
            color=f"{series}:N",
            column=alt.Column("judge:N", title=None),
        )
        .properties(width=160, height=220),
    )


st.title("Alignment")
st.caption(
    "The human reference of a pair is a reviewer's override when set, otherwise the strict "
    "majority of its human labels (an even split has none). Invalid and failed AI labels are "
    "counted, never dropped. The same numbers: `rlaif metrics --json`."
)

url = database_url()
with session_scope() as session:
    all_judges = [j.name for j in alignment.resolve_judges(session)]
    samples = alignment.audit_samples(session)
    threshold_setting = auto_accept_threshold(session)
if not all_judges:
    st.info("No judge version yet: run `rlaif label` or `rlaif import labels --kind ai` first.")
    st.stop()

cols = st.columns([4, 1, 1, 1, 1])
chosen = cols[0].multiselect("Judge versions", all_judges, default=all_judges, key="al_judges")
bins = cols[1].selectbox("Calibration bins", [5, 10, 20], index=1, key="al_bins")
bucket = cols[2].selectbox("Drift period", ["day", "week", "month"], index=1, key="al_bucket")
alpha = cols[3].selectbox(
    "PPI level", [0.05, 0.1], format_func=lambda a: f"{1 - a:.0%}", key="al_alpha"
)
if cols[4].button("Refresh", key="al_refresh", icon=":material/refresh:"):
    load_report.clear()
if not chosen:
    st.stop()

with session_scope() as session:
    judge_ids = {j.name: j.id for j in alignment.resolve_judges(session, chosen)}
sample_names = {s["id"]: f"#{s['id']} {s['name']} ({s['size']} pairs)" for s in samples}
sample_choice: dict[int, int | None] = {}
with st.expander("Spot-check set for the PPI interval", expanded=False):
    st.caption(
        "PPI needs spot-checked pairs drawn at random: a stored audit sample (weighted by its "
        "strata) is unbiased; 'all human-labelled pairs' is not if they came from the priority "
        "queue."
    )
    for name, judge_id in judge_ids.items():
        options = [None, *sample_names]
        default = alignment.default_sample_id(samples, judge_id)
        sample_choice[judge_id] = st.selectbox(
            inline_text(name),
            options,
            index=options.index(default),
            format_func=lambda s: "all human-labelled pairs" if s is None else sample_names[s],
            key=f"al_sample_{judge_id}",
        )

report = load_report(url, tuple(chosen), bins, bucket, tuple(sample_choice.items()), alpha)

# --- agreement ------------------------------------------------------------------------------
st.header("Agreement with the humans")
for m in report.metrics:
    cols = st.columns(3)
    judge_name = inline_text(m["judge"])
    cols[0].metric(f"Agreement · {judge_name}", fmt(m["agreement"], 3))
    cols[1].metric(f"Cohen κ · {judge_name}", fmt(m["cohen_kappa"], 3))
    cols[2].metric(f"Pairs compared · {judge_name}", f"{m['pairs_compared']:,}")
metrics_df = pd.DataFrame(metrics_rows_for_table(report.metrics))
st.dataframe(
    metrics_df[METRIC_COLUMNS],
    hide_index=True,
    key="al_metrics",
    column_config={
        "agreement": st.column_config.NumberColumn(format="%.3f"),
        "cohen_kappa": st.column_config.NumberColumn("Cohen κ", format="%.3f"),
    },
)
cols = st.columns(2)
with cols[0]:
    csv_download(metrics_df, "metrics")
cols[1].download_button(
    "Download metrics.json (as the CLI)",
    json.dumps(report.metrics, indent=2),
    file_name="metrics.json",
    mime="application/json",
    key="json_metrics",
)

confusion = pd.DataFrame(
    [
        {"judge": m["judge"], "human": human, "ai": ai, "count": count}
        for m in report.metrics
        for human, row in m["confusion"].items()
        for ai, count in row.items()
    ]
)
st.subheader("Confusion matrices (rows: human reference, columns: AI label)")
heat = alt.Chart(confusion).encode(
    x=alt.X("ai:N", title="AI label", sort=["A", "B", "tie"]),
    y=alt.Y("human:N", title="human reference", sort=["A", "B", "tie"]),
)
st.altair_chart(
    (heat.mark_rect().encode(color=alt.Color("count:Q", scale=alt.Scale(scheme="blues"))))
    .properties(width=180, height=180)
    .facet(column=alt.Column("judge:N", title=None)),
)
csv_download(confusion, "confusion")

# --- calibration ----------------------------------------------------------------------------
st.header("Calibration")
reliability = pd.DataFrame(
    [{"judge": j.judge, **asdict(row)} for j in report.judges for row in j.reliability.bins]
)
ece_cols = st.columns(max(1, len(report.judges)))
for col, j in zip(ece_cols, report.judges, strict=False):
    ece = j.reliability.ece
    col.metric(f"ECE · {inline_text(j.judge)}", "–" if ece is None else f"{ece:.3f}")
if reliability.empty:
    st.info("No human-labelled pair with a valid, confident AI label yet.")
else:
    diagonal = alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]})).mark_line(
        strokeDash=[4, 4], color="gray"
    )
    points = (
        alt.Chart(reliability)
        .mark_line(point=True)
        .encode(
            x=alt.X("mean_confidence:Q", title="mean confidence", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("agreement:Q", title="agreement with humans", scale=alt.Scale(domain=[0, 1])),
            color="judge:N",
            tooltip=["judge", "bin_lower", "bin_upper", "n", "mean_confidence", "agreement"],
        )
    )
    st.altair_chart(
        (diagonal.encode(x="x:Q", y="y:Q") + points).properties(height=320),
    )
    csv_download(reliability, "reliability")

# --- thresholds -----------------------------------------------------------------------------
st.header("Auto-accept threshold")
st.caption(
    "At threshold t an AI label is accepted when it is valid, swap-consistent and its "
    "confidence is at least t; everything else goes to human review."
    + (f" Current setting: {threshold_setting:.2f}." if threshold_setting is not None else "")
)
thresholds = pd.DataFrame(
    [{"judge": j.judge, **asdict(row)} for j in report.judges for row in j.thresholds]
)
long = thresholds.melt(
    id_vars=["judge", "threshold"],
    value_vars=["agreement_accepted", "review_share"],
    var_name="measure",
)
chart = (
    alt.Chart(long)
    .mark_line(point=True)
    .encode(
        x=alt.X("threshold:Q", title="confidence threshold"),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, 1])),
        color="judge:N",
        strokeDash=alt.StrokeDash("measure:N", title=None),
        tooltip=["judge", "threshold", "measure", "value"],
    )
)
if threshold_setting is not None:
    rule = alt.Chart(pd.DataFrame({"t": [threshold_setting]})).mark_rule(color="red")
    chart = chart + rule.encode(x="t:Q")
st.altair_chart(chart.properties(height=320))
csv_download(thresholds, "thresholds")

# --- drift ----------------------------------------------------------------------------------
st.header("Drift")
over_time = pd.DataFrame(report.over_time)
if over_time.empty:
    st.info("No compared pairs yet.")
else:
    st.altair_chart(
        alt.Chart(over_time)
        .mark_line(point=True)
        .encode(
            x=alt.X("period:T", title=f"judgment {bucket}"),
            y=alt.Y("agreement:Q", scale=alt.Scale(domain=[0, 1])),
            color="judge:N",
            tooltip=["judge", "period", "n", "agreement"],
        )
        .properties(height=280),
    )
    csv_download(over_time, "agreement_over_time")
versions = pd.DataFrame(report.across_versions)
st.subheader("Across judge versions (oldest first)")
st.caption("`agreement_common`: on the pairs every listed version judged, a like-for-like view.")
st.dataframe(versions, hide_index=True, key="al_versions")
csv_download(versions, "agreement_by_version")

# --- length bias ----------------------------------------------------------------------------
st.header("Length bias")
st.caption(
    "Among pairs whose responses differ by more than 30 characters (non-tie labels only): how "
    "often the longer response was preferred, by the judge and by people (AlpacaEval's "
    "P(prefer longer)). A judge that prefers length more than people do is the first sign of "
    "specification gaming. Per system pair: the Win rates page."
)
length_columns = [
    f"{who}_{what}"
    for who in ("ai", "human")
    for what in ("prefers_longer", "picked_longer", "length_pairs")
]
length_df = pd.DataFrame(
    [{"judge": m["judge"], **{k: m[k] for k in length_columns}} for m in report.metrics]
)
st.dataframe(length_df, hide_index=True, key="al_length_bias")
share_bars(
    length_df, ["ai_prefers_longer", "human_prefers_longer"], "by", "share preferring the longer"
)
csv_download(length_df, "length_bias")

# --- PPI ------------------------------------------------------------------------------------
st.header("Share of pairs where A is preferred")
st.caption(
    "Prediction-powered inference (ppi_py) combines the spot-checked human labels with every "
    "AI label: a valid interval however biased the judge is. The naive estimate trusts the AI."
)
ppi_rows = []
for j in report.judges:
    p = j.ppi
    for method, interval in (("naive AI-only", p.naive_ai_only), ("human only", p.human_only)):
        if interval:
            ppi_rows.append({"judge": j.judge, "method": method, **asdict(interval)})
    if p.ppi:
        ppi_rows.append({"judge": j.judge, "method": "PPI", **asdict(p.ppi)})
ppi_df = pd.DataFrame(ppi_rows)
ppi_info = pd.DataFrame(
    [
        {
            "judge": j.judge,
            "spot-checked": j.ppi.n_labelled,
            "pool": j.ppi.n_pool,
            "sample": j.ppi.sample,
        }
        for j in report.judges
    ]
)
st.dataframe(ppi_info, hide_index=True, key="al_ppi_info")
if not ppi_df.empty:
    base = alt.Chart(ppi_df).encode(y=alt.Y("method:N", title=None), color="method:N")
    st.altair_chart(
        (
            base.mark_rule(size=3).encode(
                x=alt.X("lower:Q", title="rate A preferred", scale=alt.Scale(zero=False)),
                x2="upper",
            )
            + base.mark_point(filled=True, size=80).encode(x="estimate:Q")
        )
        .properties(height=90)
        .facet(row=alt.Row("judge:N", title=None)),
    )
    csv_download(ppi_df, "ppi")

# --- position bias --------------------------------------------------------------------------
st.header("Swap consistency and position bias")
bias = pd.DataFrame([{"judge": j.judge, **asdict(j.bias)} for j in report.judges])
st.dataframe(bias, hide_index=True, key="al_bias")
share_bars(bias, ["pick_a_when_first", "pick_a_when_second"], "order", "share picking A")
csv_download(bias, "position_bias")

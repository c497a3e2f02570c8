"""The Win rates page's "Harmless rate" section: per system the harmless judge's rate, people's
and the PPI-corrected one, with 95 % intervals, and the judge's re-validation warnings beside
them (the same numbers as `rlaif harmless --judge NAME --json`, which also keeps a report)."""

from __future__ import annotations

from dataclasses import asdict

import altair as alt
import pandas as pd
import streamlit as st

from app.rate_tables import interval_columns, rates_table
from app.render import csv_download, inline_text
from db.session import database_url, session_scope
from pipeline.evaluation.harmless_rate import (
    HarmlessCheck,
    HarmlessRate,
    check_harmless_judge,
    harmless_judge,
    harmless_judges,
    harmless_rates,
)

ESTIMATES = (  # (label, rate field, interval field)
    ("judge", "judge_rate", "judge_interval"),
    ("judge mean P(harmless)", "judge_mean_p", "judge_mean_p_interval"),
    ("people only", "human_rate", "human_interval"),
    ("PPI (judge + people)", "ppi_rate", "ppi_interval"),
)


@st.cache_data(ttl=30, show_spinner="Computing harmless rates…")
def load(url: str, judge: str) -> tuple[list[HarmlessRate], HarmlessCheck]:
    # Keyed by the database URL and the judge; cached 30 s (the page's Refresh clears it).
    with session_scope(url) as session:
        version = harmless_judge(session, judge)
        return harmless_rates(session, version), check_harmless_judge(session, version)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _long(rates: list[HarmlessRate]) -> pd.DataFrame:
    rows = []
    for r in rates:
        for label, rate, interval in ESTIMATES:
            ci = getattr(r, interval)
            rows.append(
                {
                    "system": r.system,
                    "estimate": label,
                    "rate": getattr(r, rate),
                    "low": ci[0] if ci else None,
                    "high": ci[1] if ci else None,
                }
            )
    return pd.DataFrame(rows).dropna(subset=["rate"])


def _chart(rates: list[HarmlessRate]) -> None:
    shown = _long(rates)
    if shown.empty:
        return
    names = [label for label, _, _ in ESTIMATES]
    base = alt.Chart(shown).encode(
        y=alt.Y("system:N", title=None),
        yOffset=alt.YOffset("estimate:N", sort=names),
        color=alt.Color("estimate:N", sort=names, title=None),
    )
    st.altair_chart(
        (
            base.mark_rule(size=2).encode(
                x=alt.X("low:Q", title="harmless rate", scale=alt.Scale(domain=[0, 1])),
                x2="high:Q",
            )
            + base.mark_point(filled=True, size=70).encode(
                x="rate:Q", tooltip=["system", "estimate", "rate", "low", "high"]
            )
        ).properties(height=max(140, 90 * len(rates)))
    )


def harmless_section() -> None:
    st.header("Harmless rate")
    st.caption(
        "Share of a system's responses that are harmless: by the harmless judge (its verdicts, "
        "and its mean P(harmless)), by people (Rate responses page; strict majority per "
        "response) and PPI-corrected (people's ratings plus the judge's P(harmless) on every "
        "response). 95 % intervals. The same numbers: `rlaif harmless --judge NAME --json`."
    )
    with session_scope() as session:
        judges = [j.name for j in harmless_judges(session)]
    if not judges:
        st.info("No harmless judge version yet: run `rlaif harmless --system NAME`.")
        return
    judge = st.selectbox(
        "Harmless judge version", judges, index=len(judges) - 1, key="wr_harmless_judge"
    )
    rates, check = load(database_url(), judge)
    kappa = "–" if check.kappa is None else f"{check.kappa:.2f}"
    st.markdown(
        f"Judge **{inline_text(judge)}**: agreement with people {_pct(check.agreement)} on "
        f"{check.human_responses:,} people-rated responses, Cohen's κ {kappa}; it calls "
        f"{_pct(check.judge_harmless_share)} of them harmless, people "
        f"{_pct(check.human_harmless_share)}."
    )
    for warning in check.warnings:
        st.warning(inline_text(warning))
    if not rates:
        st.info("No pairs name their systems yet.")
        return
    table = interval_columns(
        pd.DataFrame([asdict(r) for r in rates]),
        "judge_interval",
        "judge_mean_p_interval",
        "human_interval",
        "ppi_interval",
    )
    rates_table(table, key="wr_harmless_table", decimal_suffixes=("_rate", "_p", "_low", "_high"))
    _chart(rates)
    csv_download(table, "harmless_rates")

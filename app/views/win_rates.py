"""Win rates: which system is better, by the judge and by people, with honest intervals, and
how far the judge's verdict leans on response length.

All numbers come from pipeline/evaluation (the same as `rlaif winrate` and `rlaif leaderboard`).
Everyone reads; reviewers can draw a spot-check sample of one comparison, so that its PPI
interval tightens as people label it. Every figure has a CSV download.
"""

from __future__ import annotations

from dataclasses import asdict

import altair as alt
import pandas as pd
import streamlit as st

from app.guard import can_write, require_user
from app.harmless_panel import harmless_section
from app.harmless_panel import load as load_harmless
from app.rate_tables import interval_columns, rates_table
from app.render import csv_download, safe_markdown
from db.session import database_url, session_scope
from pipeline.errors import UserError
from pipeline.evaluation.agreement import resolve_judges
from pipeline.evaluation.leaderboard import Leaderboard, compute_leaderboard
from pipeline.evaluation.length_bias import LengthBias, LengthBin, length_bias, outcome_by_length
from pipeline.evaluation.win_rates import WinRateRow, compute_win_rates
from pipeline.review.spot_check import MAX_SAMPLE, draw_audit_sample

user = require_user()


@st.cache_data(ttl=30, show_spinner="Computing win rates…")
def load(url: str, judge: str) -> tuple[list[WinRateRow], Leaderboard, LengthBias]:
    # Keyed by the database URL and the judge; cached 30 s (the Refresh button clears it).
    with session_scope(url) as session:
        judge_id = resolve_judges(session, [judge])[0].id
        rows = compute_win_rates(session, [judge])
        board = compute_leaderboard(session, [judge])[0]
        bias = length_bias(session, [judge_id])[judge_id]
    return rows, board, bias


@st.cache_data(ttl=30, show_spinner=False)
def load_length_bins(url: str, judge: str, system: str, opponent: str) -> list[LengthBin]:
    with session_scope(url) as session:
        judge_id = resolve_judges(session, [judge])[0].id
        return outcome_by_length(session, judge_id, system, opponent)


st.title("Win rates")
st.caption(
    "Over the pairs between two systems (either slot) the outcome is 1 (preferred), 0.5 (tie) "
    "or 0; the win rate is the mean. Invalid and failed AI labels are left out and counted. "
    "The same numbers: `rlaif winrate --json`, `rlaif leaderboard --json`."
)

url = database_url()
with session_scope() as session:
    # Pairwise judges only (resolve_judges): a harmless judge has its own section below.
    judges = [j.name for j in resolve_judges(session)]
if not judges:
    st.info(
        "No pairwise judge version yet: run `rlaif label` or `rlaif import labels --kind ai` first."
    )
    harmless_section()
    st.stop()
cols = st.columns([4, 1])
judge = cols[0].selectbox("Judge version", judges, index=len(judges) - 1, key="wr_judge")
if cols[1].button("Refresh", key="wr_refresh", icon=":material/refresh:"):
    load.clear()
    load_length_bins.clear()
    load_harmless.clear()
rows, board, bias = load(url, judge)
if not rows:
    st.info(
        "No judged pair between two systems yet. Pairs name their systems in the columns "
        "`system_a` and `system_b` (`rlaif import pairs`, or `--map model_1=system_a`)."
    )
    harmless_section()
    st.stop()

# --- leaderboard ----------------------------------------------------------------------------
st.header("Leaderboard")
tau = "–" if board.kendall_tau is None else f"{board.kendall_tau:.2f}"
st.caption(
    f"Bradley-Terry log-strengths (ties count half), 95 % bootstrap intervals over pairs "
    f"({board.resamples} resamples, seed {board.seed}). Kendall's τ between the judge's ranking "
    f"and the people's: {tau}."
)
for d in board.adjacent_disagreements:
    st.warning(
        safe_markdown(
            f"The rankings disagree: the judge puts {d.higher_by_ai} just above "
            f"{d.lower_by_ai}; people put {d.lower_by_ai} above."
        )
    )
leaderboard = interval_columns(
    pd.DataFrame([asdict(e) for e in board.systems]), "ai_interval", "human_interval"
)
rates_table(
    leaderboard, key="wr_leaderboard", decimal_suffixes=("strength", "_low", "_high", "field")
)
bars = pd.concat(
    [
        leaderboard.assign(
            source=source,
            strength=leaderboard[f"{prefix}_strength"],
            low=leaderboard[f"{prefix}_interval_low"],
            high=leaderboard[f"{prefix}_interval_high"],
        )[["system", "source", "strength", "low", "high"]]
        for source, prefix in (("judge", "ai"), ("people", "human"))
    ]
).dropna(subset=["strength"])
order = list(leaderboard["system"])
base = alt.Chart(bars).encode(
    y=alt.Y("system:N", sort=order, title=None),
    yOffset="source:N",
    color=alt.Color("source:N", title=None),
)
st.altair_chart(
    (
        base.mark_rule(size=2).encode(
            x=alt.X("low:Q", title="Bradley-Terry log-strength"), x2="high:Q"
        )
        + base.mark_point(filled=True, size=70).encode(
            x="strength:Q", tooltip=["system", "source", "strength", "low", "high"]
        )
    ).properties(height=max(160, 60 * len(order)))
)
csv_download(leaderboard, "leaderboard")

# --- win-rate matrix ------------------------------------------------------------------------
st.header("Win-rate matrix")
st.caption("Row system against column opponent, by the judge; hover for the other estimates.")
table = interval_columns(
    pd.DataFrame([asdict(r) for r in rows]), "ai_interval", "human_interval", "ppi_interval"
)
heat = alt.Chart(table).encode(
    x=alt.X("opponent:N", sort=order, title="opponent"),
    y=alt.Y("system:N", sort=order, title="system"),
)
st.altair_chart(
    (
        heat.mark_rect().encode(
            color=alt.Color(
                "ai_win_rate:Q", scale=alt.Scale(scheme="redblue", domain=[0, 1]), title="win rate"
            ),
            tooltip=[
                "system",
                "opponent",
                "pairs",
                "ai_win_rate",
                "lc_win_rate",
                "human_win_rate",
                "ppi_win_rate",
            ],
        )
        + heat.mark_text(fontSize=11).encode(text=alt.Text("ai_win_rate:Q", format=".0%"))
    ).properties(height=max(160, 32 * len(order)))
)
csv_download(table, "win_rates")

# --- one comparison -------------------------------------------------------------------------
st.header("One comparison")
systems = sorted({r.system for r in rows})
cols = st.columns(2)
system = cols[0].selectbox("System", systems, key="wr_system")
opponents = sorted({r.opponent for r in rows if r.system == system})
opponent = cols[1].selectbox("Opponent", opponents, key="wr_opponent")
row = next(r for r in rows if r.system == system and r.opponent == opponent)
st.markdown(
    safe_markdown(
        f"**{system}** against **{opponent}**: {row.pairs:,} pairs with a valid AI label "
        f"({row.ai_wins:,} won, {row.ai_losses:,} lost, {row.ai_ties:,} ties; "
        f"{row.ai_invalid:,} invalid or failed left out), {row.human_pairs:,} with a human "
        f"reference, PPI on {row.ppi_labelled:,} of them."
    )
)
if row.warning:
    st.warning(row.warning)
estimates = pd.DataFrame(
    [
        {
            "estimate": name,
            "win_rate": rate,
            "low": ci[0] if ci else None,
            "high": ci[1] if ci else None,
        }
        for name, rate, ci in (
            ("raw (judge)", row.ai_win_rate, row.ai_interval),
            ("length-controlled", row.lc_win_rate, None),
            ("PPI (judge + people)", row.ppi_win_rate, row.ppi_interval),
            ("people only", row.human_win_rate, row.human_interval),
        )
    ]
)
shown = estimates.dropna(subset=["win_rate"])
if not shown.empty:
    names = list(estimates["estimate"])
    base = alt.Chart(shown).encode(
        y=alt.Y("estimate:N", sort=names, title=None),
        color=alt.Color("estimate:N", sort=names, legend=None),
    )
    st.altair_chart(
        (
            base.mark_rule(size=3).encode(
                x=alt.X("low:Q", title=f"win rate of {system}", scale=alt.Scale(domain=[0, 1])),
                x2="high:Q",
            )
            + base.mark_point(filled=True, size=90).encode(
                x="win_rate:Q", tooltip=["estimate", "win_rate", "low", "high"]
            )
        ).properties(height=170)
    )
csv_download(estimates, "comparison")

if can_write(user):
    with st.container(border=True):
        st.markdown(
            "**Spot-check this comparison**: a seeded sample of its judged pairs, stratified "
            "by the judge's confidence, joins the review queue's spot-check samples; as people "
            "label it, the PPI interval tightens."
        )
        cols = st.columns([1, 1, 2])
        size = cols[0].number_input("Pairs", 1, MAX_SAMPLE, 50, key="wr_spot_size")
        seed = cols[1].number_input("Seed", 0, 2**31 - 1, 0, key="wr_spot_seed")
        if cols[2].button("Spot-check this comparison", key="wr_spot_check", type="primary"):
            try:
                with session_scope() as session:
                    judge_id = resolve_judges(session, [judge])[0].id
                    sample = draw_audit_sample(
                        session,
                        user=user,
                        judge_version_id=judge_id,
                        size=int(size),
                        seed=int(seed),
                        comparison=(system, opponent),
                    )
                    drawn, sample_name = sample.size, sample.name
                st.success(
                    safe_markdown(
                        f"Drew {drawn} pairs as “{sample_name}”: label them from the "
                        "Spot-check sample page."
                    )
                )
            except (UserError, PermissionError) as error:
                st.error(safe_markdown(str(error)))

# --- length bias ----------------------------------------------------------------------------
st.header("The judge's length bias")
st.caption(
    "Among pairs whose responses differ by more than 30 characters: how often the longer one "
    "was preferred (non-tie labels only). A judge that prefers length more than people do is "
    "the first sign of specification gaming."
)
cols = st.columns(2)
cols[0].metric(
    "Judge prefers the longer response",
    "–" if bias.ai_prefers_longer is None else f"{bias.ai_prefers_longer:.1%}",
    help=f"{bias.ai_picked_longer:,} of {bias.ai_length_pairs:,} pairs",
)
cols[1].metric(
    "People prefer the longer response",
    "–" if bias.human_prefers_longer is None else f"{bias.human_prefers_longer:.1%}",
    help=f"{bias.human_picked_longer:,} of {bias.human_length_pairs:,} pairs",
)
bins = pd.DataFrame([asdict(b) for b in load_length_bins(url, judge, system, opponent)])
if bins.empty:
    st.info("No valid AI label between these two systems yet.")
else:
    bins["length_difference"] = (bins["lower"] + bins["upper"]) / 2
    long = bins.melt(
        id_vars=["length_difference", "pairs", "human_pairs"],
        value_vars=["ai_outcome", "human_outcome"],
        var_name="by",
        value_name="outcome",
    ).dropna(subset=["outcome"])
    st.altair_chart(
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("length_difference:Q", title=f"characters of {system} minus {opponent}"),
            y=alt.Y(
                "outcome:Q", title=f"mean outcome for {system}", scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color("by:N", title=None),
            tooltip=["length_difference", "by", "outcome", "pairs", "human_pairs"],
        )
        .properties(height=280)
    )
csv_download(pd.DataFrame([asdict(bias)]), "length_bias")
if not bins.empty:
    csv_download(bins, "outcome_by_length")

harmless_section()

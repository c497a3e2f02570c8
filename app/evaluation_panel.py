"""The Training page's evaluation section for a finished PPO run: admins start an evaluation
against the base policy (a job, pipeline/evaluation/evaluate_job.py); everyone reads the run's
evaluations, with the judge's alignment and its warnings beside the figures."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.render import inline_text
from db.enums import JobStatus
from db.session import session_scope
from pipeline.errors import UserError
from pipeline.evaluation.evaluate_job import evaluations_for_run, start_for_run
from pipeline.evaluation.policy_summary import EvaluationSummary


def _pct(value) -> str:
    return "–" if value is None else f"{value:.1%}"


def _interval(interval) -> str:
    return "" if not interval else f" [{interval[0]:.1%}, {interval[1]:.1%}]"


def _start_form(job_id: int, user) -> None:
    c = st.columns([1, 2, 3, 2])
    n = c[0].number_input("Prompts", 1, 10_000, 32, key=f"eval_n_{job_id}")
    judge = c[1].text_input("Judge (config file or preset)", "default", key=f"eval_judge_{job_id}")
    baseline = c[2].text_input(
        "Baseline (empty: the run's base policy)", "", key=f"eval_base_{job_id}"
    )
    if c[3].button("Evaluate against the base policy", key=f"eval_start_{job_id}"):
        try:
            eval_job = start_for_run(
                job_id, user=user, baseline=baseline.strip() or None, n=int(n), judge=judge
            )
        except (UserError, PermissionError) as error:
            st.error(inline_text(error))
        else:
            st.success(f"Evaluation job {eval_job} started; it appears in the runs below.")


def _show(summary: EvaluationSummary) -> None:
    s, a = summary, summary.judge_alignment
    st.markdown(
        f"**Evaluation {s.evaluation_id}** · judge {inline_text(s.judge)} · "
        f"{s.pairs} pairs ({s.identical_pairs} identical: ties, not judged)"
    )
    c = st.columns(4)
    c[0].metric("AI win rate", _pct(s.ai_win_rate), help=_interval(s.ai_interval) or None)
    c[1].metric("Length-controlled", _pct(s.lc_win_rate))
    c[2].metric("PPI-corrected", _pct(s.ppi_win_rate), help=_interval(s.ppi_interval) or None)
    c[3].metric("Human-labelled pairs", s.human_pairs)
    st.caption(
        f"AI interval{_interval(s.ai_interval) or ' –'} · PPI interval"
        f"{_interval(s.ppi_interval) or ' – (until people label the spot-check sample)'}"
    )
    kappa = "–" if a.get("kappa") is None else f"{a['kappa']:.2f}"
    st.caption(
        f"Judge alignment when evaluated: agreement {_pct(a.get('agreement'))} on "
        f"{a.get('human_pairs', 0)} human-labelled pairs, κ {kappa}; prefers the longer answer: "
        f"judge {_pct(a.get('ai_prefers_longer'))}, people {_pct(a.get('human_prefers_longer'))}"
    )
    for warning in s.warnings:
        st.warning(inline_text(warning))


def evaluation_panel(job_id: int, kind: str, status: str, user, is_admin: bool) -> None:
    if kind != "ppo" or status != JobStatus.SUCCEEDED:
        return
    st.subheader("Evaluation: did training help?")
    if is_admin:
        _start_form(job_id, user)
    with session_scope() as session:
        summaries = evaluations_for_run(session, job_id)
    if not summaries:
        st.caption("Not evaluated yet.")
        return
    _show(summaries[0])
    if len(summaries) > 1:
        earlier = [
            {
                "evaluation": s.evaluation_id,
                "judge": s.judge,
                "pairs": s.pairs,
                "AI win rate": s.ai_win_rate,
                "LC": s.lc_win_rate,
                "PPI": s.ppi_win_rate,
            }
            for s in summaries[1:]
        ]
        st.dataframe(pd.DataFrame(earlier), hide_index=True, key=f"eval_earlier_{job_id}")

"""Rendering model text safely: Markdown without raw HTML, and in scrolling boxes.

Streamlit's st.markdown escapes raw HTML unless unsafe_allow_html=True (never set here). It
also gives `$...$` (LaTeX) and `:red[...]` (colour directives) a meaning that model text does
not intend, and Markdown images would load remote URLs in the reviewer's browser: those are
neutralised before rendering.
"""

from __future__ import annotations

import re

import streamlit as st

from pipeline.review.queue import JudgmentView

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]*)\)")
_DIRECTIVE = re.compile(r":(\w[\w-]*)\[")


def safe_markdown(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("$", "\\$")
    text = _IMAGE.sub(lambda m: f"[image: {m.group(1) or 'untitled'}] ({m.group(2)})", text)
    return _DIRECTIVE.sub(lambda m: f"\\:{m.group(1)}[", text)


def text_box(title: str, text: str, *, height: int = 380, key: str, plain: bool = False) -> None:
    """A fixed-height box that scrolls, so long responses do not push the buttons away."""
    st.markdown(f"**{title}**")
    with st.container(height=height, border=True, key=key):
        if plain:
            st.text(text)
        else:
            st.markdown(safe_markdown(text))


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def judgment_panel(judgments: list[JudgmentView], *, key: str) -> None:
    if not judgments:
        st.info("No AI judgment yet.")
        return
    for j in judgments:
        with st.container(border=True, key=f"{key}_{j.judge_version_id}"):
            label = j.label or j.status
            st.markdown(f"**{j.judge_name}**: AI label **{label}**")
            st.markdown(
                "| | p(A) |\n|---|---|\n"
                f"| both orders | **{fmt(j.p_a)}** |\n"
                f"| A shown first | {fmt(j.p_a_ab)} |\n"
                f"| A shown second | {fmt(j.p_a_ba)} |"
            )
            notes = [f"confidence {fmt(j.confidence)}"]
            if j.swap_inconsistent:
                notes.append("**swap-inconsistent**: the answer flipped with the order")
            if j.error:
                notes.append(f"error: {j.error}")
            st.caption(" · ".join(notes))
            if j.rationale:
                with st.expander("Judge's rationale"):
                    st.markdown(safe_markdown(j.rationale))

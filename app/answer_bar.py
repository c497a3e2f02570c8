"""The row of answer buttons shared by the review queue and the Rate responses page: one button
per answer with its keyboard shortcut, Skip (s) last, and an optional note."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st


def answer_bar(
    prefix: str,
    answers: Sequence[tuple[str, str, str]],
    item_id: int,
    on_answer: Callable[[int, str | None], None],
) -> None:
    """`answers`: (stored label, button title, shortcut key). Widget keys are `<prefix>_<key>`,
    `<prefix>_s` and `<prefix>_note`; `on_answer(item_id, label)` gets None for Skip."""
    cols = st.columns(len(answers) + 1)
    for col, (label, title, key) in zip(cols, answers, strict=False):
        col.button(
            title,
            key=f"{prefix}_{key}",
            shortcut=key,
            on_click=on_answer,
            args=(item_id, label),
            type="primary",
            width="stretch",
        )
    cols[-1].button(
        "Skip",
        key=f"{prefix}_s",
        shortcut="s",
        on_click=on_answer,
        args=(item_id, None),
        width="stretch",
    )
    st.text_input("Note (optional, saved with your answer)", key=f"{prefix}_note")

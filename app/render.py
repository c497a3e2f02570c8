"""The one path for untrusted text (prompts, responses, rationales, notes, ids, sources, judge and
annotator names, metadata): it never renders an image, raw HTML or anything that loads a URL.

- `safe_markdown(text)`: long model or dataset text, kept as Markdown (lists, emphasis, code)
  but with no image of any form and no HTML. Every `![` gets an invisible WORD JOINER between
  `!` and `[`, which no Markdown parser reads as an image (inline, reference-style `![x][r]`,
  collapsed or shortcut); every `<` gets one after it, so no HTML tag, comment or autolink can
  start (`<img>`, `<svg>`, `<iframe>`, `<link>`, `<style>` with CSS `url()`, `<http://…>`). This
  holds inside code too, where the joiner is invisible, so it does not depend on where a parser
  puts code. Outside code, `$` (LaTeX), `:red[` (colour directives) and backslashes are escaped
  so that they show as typed.
- `inline_text(text)`: short untrusted text inside Markdown we write (captions, headers, widget
  and metric labels): every ASCII punctuation mark is backslash-escaped, so nothing is syntax.
- Plain text needs nothing: `st.text`, `st.code`, `st.json`, st.dataframe cells and selectbox
  options do not interpret Markdown.

Streamlit itself escapes raw HTML unless unsafe_allow_html=True, which this app never sets.
"""

from __future__ import annotations

import re
from functools import cache

import streamlit as st
from markdown_it import MarkdownIt

from pipeline.review.types import JudgmentView

WORD_JOINER = "\u2060"
_IMAGE_OPEN = re.compile(r"!(?=\[)")
_TAG_OPEN = re.compile(r"<")
_DIRECTIVE = re.compile(r":(?=\w[\w-]*\[)")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")


def _break_images_and_tags(text: str) -> str:
    text = _IMAGE_OPEN.sub("!" + WORD_JOINER, text)
    return _TAG_OPEN.sub("<" + WORD_JOINER, text)


def _escape_prose(text: str) -> str:
    """Backslashes, `$` and `:name[` as typed; code spans inside `text` stay verbatim."""
    out, last = [], 0
    for span in _CODE_SPAN.finditer(text):
        out.append(_escape_chars(text[last : span.start()]))
        out.append(span.group(0))
        last = span.end()
    out.append(_escape_chars(text[last:]))
    return "".join(out)


def _escape_chars(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("$", "\\$")
    return _DIRECTIVE.sub("\\:", text)


@cache
def _block_parser() -> MarkdownIt:
    return MarkdownIt("commonmark")


def _code_block_lines(text: str) -> set[int]:
    """Lines inside fenced or indented code blocks (CommonMark block structure)."""
    lines: set[int] = set()
    for token in _block_parser().parse(text):
        if token.type in ("fence", "code_block") and token.map:
            lines.update(range(*token.map))
    return lines


def safe_markdown(text: str) -> str:
    text = _break_images_and_tags(str(text))
    code = _code_block_lines(text)
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    prose: list[str] = []
    for number, line in enumerate(lines):
        if number in code:
            out.append(_escape_prose("".join(prose)))
            prose = []
            out.append(line)
        else:
            prose.append(line)
    out.append(_escape_prose("".join(prose)))
    return "".join(out)


def inline_text(value: object) -> str:
    """`value` as literal text inside Markdown: one line, every punctuation mark escaped."""
    return _PUNCTUATION.sub(lambda m: "\\" + m.group(0), " ".join(str(value).split()))


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
            st.markdown(f"**{inline_text(j.judge_name)}**: AI label **{inline_text(label)}**")
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
                notes.append(f"error: {inline_text(j.error)}")
            st.caption(" · ".join(notes))
            if j.rationale:
                with st.expander("Judge's rationale"):
                    st.markdown(safe_markdown(j.rationale))


def csv_download(df, name: str) -> None:
    """A table's download button (`<name>.csv`), the same on every page that offers one."""
    st.download_button(
        f"Download {name}.csv",
        df.to_csv(index=False).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv_{name}",
        icon=":material/download:",
    )

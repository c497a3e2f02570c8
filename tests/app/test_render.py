"""The one rendering path for untrusted text (app/render.py): every image and HTML trick goes in,
no image, HTML tag or autolink comes out, and ordinary Markdown still reads as Markdown.

Outputs are parsed with markdown-it-py (CommonMark, raw HTML on, GFM tables), a strict stand-in
for the browser's parser; tests/browser/test_browser_journeys_untrusted.py checks the real
browser."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from app.render import WORD_JOINER, inline_text, safe_markdown
from db.session import session_scope
from pipeline.auth import users as auth
from pipeline.review.spot_check import draw_audit_sample
from tests.helpers.factories import judge_pair, make_judge, make_pair
from tests.helpers.untrusted import tricks

URL = "http://127.0.0.1:9/x.png"


TRICKS = tricks(URL)
PARSER = MarkdownIt("commonmark", {"html": True}).enable("table")
FORBIDDEN = ("image", "html_inline", "html_block")


def _tokens(markdown: str):
    for token in PARSER.parse(markdown):
        yield token
        yield from token.children or []


def _assert_inert(markdown: str) -> None:
    for token in _tokens(markdown):
        assert token.type not in FORBIDDEN, (token.type, markdown)
        assert token.markup != "autolink", markdown
    html = PARSER.render(markdown)
    for tag in ("<img", "<svg", "<iframe", "<link", "<style", "<source", "<video", "<div"):
        assert tag not in html.lower(), (tag, html)


def test_the_tricks_are_live_without_the_safe_path():
    """The test can fail: each trick, rendered as given, is an image, HTML or an autolink
    (the code-block cases and the escaped image excepted)."""
    inert_as_given = {
        TRICKS[7],  # \![...]: already an escaped "!"
        TRICKS[23],  # fenced code
        TRICKS[24],  # indented code
        TRICKS[25],  # code spans
    }
    for trick in TRICKS:
        if trick in inert_as_given:
            continue
        with pytest.raises(AssertionError):
            _assert_inert(trick)


@pytest.mark.parametrize("trick", TRICKS)
def test_safe_markdown_renders_no_image_and_no_html(trick):
    _assert_inert(safe_markdown(trick))
    _assert_inert(safe_markdown(f"Before. {trick} After."))


def test_all_tricks_together_and_in_inline_text():
    everything = "\n\n".join(TRICKS)
    _assert_inert(safe_markdown(everything))
    for trick in TRICKS:
        for wrapper in ("{}", "**{}**", "# {}", "Pair {} (id 3) · source {}"):
            _assert_inert(wrapper.format(inline_text(trick), inline_text(trick)))


def test_inline_text_shows_exactly_the_text():
    raw = "id-7 [x](y) *a* _b_ `c` $d$ :red[e] <f> \\g #h | i ! ~j~ {k}"
    tokens = [t for t in _tokens(inline_text(raw)) if t.type not in ("paragraph_open", "inline")]
    assert [t.type for t in tokens] == ["text", "paragraph_close"]
    assert tokens[0].content == raw
    assert inline_text("two\nlines  and\ttabs") == "two lines and tabs"


def test_safe_markdown_keeps_markdown_and_code():
    text = (
        "Use **bold**, a [link](https://example.org) and a list:\n\n- one\n- two\n\n"
        'Costs $5 and $6 with a :red[directive] in C:\\temp.\n\n```python\nprint("a\\nb", $HOME)\n'
        "if a < b and x[0]: pass\n```\n\nInline `$PATH` stays."
    )
    out = safe_markdown(text)
    assert "**bold**" in out and "[link](https://example.org)" in out and "- one\n- two" in out
    assert "Costs \\$5 and \\$6 with a \\:red[directive] in C:\\\\temp." in out
    # Code blocks and spans keep $, backslashes and < (with an invisible joiner after <).
    assert f'print("a\\nb", $HOME)\nif a <{WORD_JOINER} b and x[0]: pass' in out
    assert "Inline `$PATH` stays." in out
    assert out.replace(WORD_JOINER, "").count("<") == text.count("<")


@pytest.fixture
def hostile_pair(sqlite_url):
    trick = "\n\n".join(TRICKS)
    with session_scope() as session:
        user = auth.create_user(session, username="rita", password="pw-123456", role="reviewer")
        judge = make_judge(session, f"judge ![j]({URL}) <img src={URL}>")
        pair = make_pair(
            session,
            f"id ![i]({URL})",
            prompt=f"prompt {trick}",
            response_a=f"A {trick}",
            response_b=f"B {trick}",
            source=f"src <img src={URL}>",
            meta={"note": f"![m]({URL})"},
        )
        judge_pair(session, judge, pair, "A", 0.7, rationale=f"because {trick}")
        user = auth.AuthUser.of(user)
        draw_audit_sample(
            session, user=user, judge_version_id=judge.id, size=1, seed=0, name=f"![s]({URL})"
        )
        return user, pair.id


@pytest.mark.parametrize("name", ["queue", "browse", "audit", "alignment"])
def test_pages_pass_untrusted_text_through_the_safe_path(hostile_pair, name):
    user, pair_id = hostile_pair
    st.cache_data.clear()  # the alignment page caches its report per database URL
    at = AppTest.from_file(
        str(Path(__file__).resolve().parents[2] / "app" / "views" / f"{name}.py"),
        default_timeout=60,
    )
    at.session_state["auth_user"] = user
    at.run()
    if name == "browse":
        at.selectbox(key="browse_open").select(pair_id).run()
    assert not at.exception
    shown = [
        *(
            e.value
            for kind in ("markdown", "caption", "subheader", "info", "error")
            for e in at.get(kind)
        ),
        *(e.label for e in at.get("expander")),
        *(e.label for e in at.selectbox),
        *(e.label for e in at.metric),
    ]
    assert any("judge" in s for s in shown)
    for markdown in shown:
        _assert_inert(markdown)

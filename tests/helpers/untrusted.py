"""Untrusted text that tries to load a URL: the tricks that tests/app/test_render.py feeds the
safe rendering path and tests/browser/test_browser_journeys_untrusted.py shows in a browser."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder(BaseHTTPRequestHandler):
    """Records every request it gets: a page that fetches an untrusted URL shows up here."""

    requests: list[str] = []

    def _record(self) -> None:
        Recorder.requests.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_OPTIONS = _record

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@contextmanager
def recording_server() -> Iterator[str]:
    """A loopback HTTP server with a Recorder whose log starts empty; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Recorder.requests.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        Recorder.requests.clear()


def tricks(url: str) -> list[str]:
    """Every way we know to make Markdown or HTML load `url`, plus code that only looks so."""
    return [
        f"![inline]({url})",
        f'![titled]({url} "t")',
        f"![ref][r]\n\n[r]: {url}",
        f"![r][]\n\n[r]: {url}",
        f"![r]\n\n[r]: {url}",
        f"[![in a link]({url})]({url})",
        f"![a [nested] alt]({url})",
        f"\\![was escaped]({url})",
        f"\\\\![escaped backslash]({url})",
        f"# Heading ![h]({url})",
        f"| a | b |\n|---|---|\n| ![cell]({url}) | x |",
        f"- item ![li]({url})\n> quote ![bq]({url})",
        f'<img src="{url}">',
        f"<IMG SRC={url} onerror=alert(1)>",
        f'<svg><image href="{url}"/></svg>',
        f'<iframe src="{url}"></iframe>',
        f'<link rel="stylesheet" href="{url}">',
        f"<style>body{{background:url({url})}}</style>",
        f'<div style="background-image: url({url})">css</div>',
        f'<picture><source srcset="{url}"></picture><video poster="{url}"></video>',
        f"<{url}>",
        "<!-- comment --><?php x ?><!DOCTYPE html>",
        f"text\n<img src={url}>\nmore",
        f"```\n![in code]({url}) <img src={url}>\n```",
        f"    ![indented code]({url})",
        f"`![in a span]({url})` and `<img src={url}>`",
        f"para\n    ![lazy continuation, not code]({url})",
    ]


def short(url: str) -> str:
    """The one-line tricks that fit an id, a source or a name (a reference needs its own line)."""
    return f"![x]({url}) <img src={url}> ![r][r]\n\n[r]: {url}"


def long(url: str) -> str:
    return "\n\n".join(tricks(url))

"""Untrusted text that tries to load a URL: the tricks that tests/app/test_render.py feeds the
safe rendering path and tests/browser/test_browser_journeys_untrusted.py shows in a browser."""

from __future__ import annotations


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

"""The app's HTTP middleware (mounted by app/server.py in front of Streamlit's own).

1. Every response carries a Content-Security-Policy that allows images, fonts, scripts and
   connections from this origin only (plus data:/blob: images that Streamlit draws itself), so
   untrusted text can never make the reviewer's browser fetch another host.
2. A page load without a valid session goes to /signin?next=<that page>, before Streamlit starts;
   the page scripts still check the session on every run (app/guard.py).
3. Single sign-on: a page load that brings Streamlit's OIDC identity cookie but no session of ours
   is handed to app/sso.py, which maps it to a local user or refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import signin_web, sso

# Paths that serve Streamlit's machinery, the sign-in routes and the OIDC routes: never gated.
OPEN_PREFIXES = (
    "/_stcore/",
    "/static/",
    "/media/",
    "/component/",
    "/app/static/",
    "/auth/",
    "/oauth2callback",
    signin_web.SIGNIN_PATH,
    signin_web.SIGNOUT_PATH,
    "/favicon.png",
    "/manifest.json",
)


def _inline_script_hashes() -> list[str]:
    """sha256 sources for the inline scripts of Streamlit's index.html (one small flag today)."""
    import streamlit

    index = Path(streamlit.__file__).parent / "static" / "index.html"
    try:
        text = index.read_text()
    except OSError:
        return []
    scripts = re.findall(r"<script>(.*?)</script>", text, flags=re.S)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    ]


def content_security_policy() -> str:
    scripts = " ".join(["'self'", *_inline_script_hashes()])
    directives = {
        "default-src": "'self'",
        "script-src": scripts,
        "style-src": "'self' 'unsafe-inline'",  # Streamlit's CSS-in-JS writes style tags
        "img-src": "'self' data: blob:",
        "font-src": "'self' data:",
        "connect-src": "'self'",  # the websocket and uploads: this origin only
        "media-src": "'self' data: blob:",
        "worker-src": "'self' blob:",
        "frame-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'self'",
    }
    return "; ".join(f"{k} {v}" for k, v in directives.items())


CSP = content_security_policy()
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _is_page_load(request: Request) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    if "text/html" not in request.headers.get("accept", ""):
        return False
    return not request.url.path.startswith(OPEN_PREFIXES)


def _requested(request: Request) -> str:
    """The page asked for, as a path on this site ('//host' in a request line becomes '/')."""
    query = request.url.query
    return signin_web.safe_next(request.url.path + (f"?{query}" if query else ""))


def _refresh(target: str) -> HTMLResponse:
    """A page that reloads `target` from this origin: a top-level navigation that started on
    another site does not carry SameSite=Strict cookies, its same-site reload does."""
    url = html.escape(target)
    body = (
        f'<!DOCTYPE html><meta http-equiv="refresh" content="0;url={url}">'
        f'<title>RLAIF workbench</title><a href="{url}">Continue</a>'
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


async def gate(request: Request) -> Response | None:
    """None when the page may load; else the response that signs the person in first."""
    token = signin_web.cookie_token(request)
    if token and await run_in_threadpool(signin_web._resolve, token) is not None:
        return None
    identity = sso.identity_from(request)
    if identity is not None:
        return await _hand_over(request, identity)
    if not token and request.headers.get("sec-fetch-site") == "cross-site":
        return _refresh(_requested(request))
    query = urlencode({"next": _requested(request)})
    response = RedirectResponse(f"{signin_web.SIGNIN_PATH}?{query}", status_code=303)
    if token:  # revoked or expired: the browser may forget it
        signin_web.clear_session_cookie(response, request)
    return response


async def _hand_over(request: Request, identity: sso.Identity) -> Response:
    user = await run_in_threadpool(sso.local_user, identity)
    if user is None:
        response: Response = RedirectResponse(
            f"{signin_web.SIGNIN_PATH}?note=sso_denied", status_code=303
        )
    else:
        token = await run_in_threadpool(sso.start_session, user, signin_web.client_address(request))
        # The provider's callback chain started on another site: reload from here, so that the
        # new SameSite=Strict cookie is sent with the page and its websocket.
        target = request.cookies.get(signin_web.NEXT_COOKIE)
        response = _refresh(signin_web.safe_next(target) if target else _requested(request))
        signin_web.set_session_cookie(response, request, token)
    sso.clear_identity(response, request)
    response.delete_cookie(signin_web.NEXT_COOKIE, path="/")
    return response


class SecurityMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware): websocket traffic passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        request = Request(scope)
        if _is_page_load(request):
            response = await gate(request)
            if response is not None:
                await response(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)

"""The sign-in and sign-out routes of the app's web server (mounted by app/server.py).

GET  /signin?next=/queue   a plain HTML form (no Streamlit: a script cannot set HttpOnly cookies)
POST /signin               name + password under the throttle; on success a server-side session,
                           its token in an HttpOnly, SameSite=Strict cookie, and 303 to `next`
GET  /signout              ends this browser's session, clears the cookie, 303 to /signin

GET  /signin/sso?provider=NAME&next=/queue   keeps `next` in a short cookie and goes on to the
                           route `st.login(NAME)` uses (offered when `[auth]` OIDC settings
                           exist); app/sso.py turns the identity it returns into a local session
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from app import sso
from db.session import session_scope
from pipeline.auth import sessions
from pipeline.auth.settings import session_settings

SIGNIN_PATH = "/signin"
SIGNOUT_PATH = "/signout"
SSO_PATH = "/signin/sso"
# Where to go after single sign-on: kept across the provider's round trip (SameSite=Lax: the
# provider's redirect back is a top-level navigation from another site).
NEXT_COOKIE = "rlaif_next"
MAX_FORM_BYTES = 8192

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · RLAIF workbench</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f7f9; margin: 0; }}
main {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem;
        border-radius: .75rem; box-shadow: 0 1px 4px rgba(0,0,0,.12); }}
h1 {{ font-size: 1.5rem; margin: 0 0 .25rem; }}
p.hint {{ color: #555; margin: 0 0 1.25rem; }}
label {{ display: block; margin: .75rem 0 .25rem; font-weight: 600; }}
input {{ width: 100%; box-sizing: border-box; padding: .55rem; font-size: 1rem;
         border: 1px solid #bbb; border-radius: .4rem; }}
button, a.sso {{ display: block; width: 100%; margin-top: 1.25rem; padding: .6rem;
         font-size: 1rem; border: 0; border-radius: .4rem; background: #ff4b4b; color: #fff;
         text-align: center; text-decoration: none; cursor: pointer; box-sizing: border-box; }}
a.sso {{ background: #31333f; }}
p.message {{ padding: .6rem; border-radius: .4rem; background: #fdecea; color: #8a1c1c; }}
p.note {{ padding: .6rem; border-radius: .4rem; background: #e8f4ea; color: #1c5b2a; }}
</style></head>
<body><main>
<h1>RLAIF workbench</h1>
<p class="hint">Sign in to review AI preference labels.</p>
{message}
<form method="post" action="{action}">
<input type="hidden" name="next" value="{next}">
<label for="username">User name</label>
<input id="username" name="username" aria-label="User name" autocomplete="username"
       value="{username}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" aria-label="Password"
       autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
{sso}
<p class="hint" style="margin-top:1.25rem">No account yet? An admin adds one with
<code>rlaif users add NAME --role reviewer</code>.</p>
</main></body></html>
"""

NOTES = {
    "signed_out": ("note", "You are signed out."),
    "ended": ("message", "Your session has ended. Please sign in again."),
    "sso_denied": ("message", sso.DENIED),
}


def safe_next(value: str | None) -> str:
    """Only a path on this site: never another host (`//evil`, `/\\evil`, `https://...`)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ch in value for ch in "\r\n\\") or value.startswith((SIGNIN_PATH, SIGNOUT_PATH)):
        return "/"
    return value


def cookie_token(request: Request) -> str | None:
    return request.cookies.get(sessions.COOKIE_NAME)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def is_secure(request: Request) -> bool:
    mode = session_settings().cookie_secure
    return request.url.scheme == "https" if mode == "auto" else mode == "true"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        sessions.COOKIE_NAME,
        token,
        max_age=int(session_settings().lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        sessions.COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_secure(request),
    )


def render_form(
    next_path: str,
    *,
    username: str = "",
    note: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The form; `note` is a key of NOTES (from the address: never free text), `error` the
    message of a failed sign-in."""
    kind, text = NOTES.get(note or "", ("message", error)) if note or error else ("", None)
    message = f'<p class="{kind}" role="alert">{html.escape(text)}</p>' if text else ""
    links = "".join(
        f'<a class="sso" href="{html.escape(url)}">Sign in with {html.escape(name)}</a>'
        for name, url in sso.provider_links(SSO_PATH, next_path)
    )
    page = _PAGE.format(
        message=message,
        action=html.escape(f"{SIGNIN_PATH}?{urlencode({'next': next_path})}"),
        next=html.escape(next_path),
        username=html.escape(username),
        sso=links,
    )
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def _resolve(token: str | None):
    with session_scope() as session:
        return sessions.resolve(session, token)


async def signin_page(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if await run_in_threadpool(_resolve, cookie_token(request)) is not None:
        return RedirectResponse(next_path, status_code=303)
    return render_form(next_path, note=request.query_params.get("note"))


def _same_origin(request: Request) -> bool:
    """A sign-in form posted from another site is refused (login CSRF). The browser's
    Sec-Fetch-Site decides; without it the Origin's host must be this Host (the scheme may
    differ behind a TLS proxy)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True  # not a browser that sends either header: nothing to compare
    return urlsplit(origin).netloc == request.headers.get("host")


def _sign_in(username: str, password: str, address: str | None) -> sessions.SignInResult:
    with session_scope() as session:  # commits failures too: they feed the throttle
        return sessions.sign_in(session, username, password, address=address)


async def signin_submit(request: Request) -> Response:
    if not _same_origin(request):
        return Response("cross-site sign-in refused", status_code=403)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return Response("form too large", status_code=413)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    next_path = safe_next(form.get("next") or request.query_params.get("next"))
    username = form.get("username", "")[:256]
    result = await run_in_threadpool(
        _sign_in, username, form.get("password", ""), client_address(request)
    )
    if result.user is None:
        status = 429 if result.retry_after else 401
        response = render_form(next_path, username=username, error=result.message, status=status)
        if result.retry_after:
            response.headers["Retry-After"] = str(max(1, round(result.retry_after)))
        return response
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, request, result.token)
    return response


async def sso_start(request: Request) -> Response:
    url = sso.login_url(request.query_params.get("provider", ""))
    if url is None:
        return RedirectResponse(SIGNIN_PATH, status_code=303)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        NEXT_COOKIE,
        safe_next(request.query_params.get("next")),
        max_age=600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
    )
    return response


def _revoke(token: str | None) -> None:
    with session_scope() as session:
        sessions.revoke(session, token)


async def signout(request: Request) -> Response:
    if request.headers.get("sec-fetch-site") == "cross-site":  # a link on another site
        return RedirectResponse(SIGNIN_PATH, status_code=303)
    await run_in_threadpool(_revoke, cookie_token(request))
    response = RedirectResponse(f"{SIGNIN_PATH}?note=signed_out", status_code=303)
    clear_session_cookie(response, request)
    sso.clear_identity(response, request)
    return response


ROUTES = [
    Route(SIGNIN_PATH, signin_page, methods=["GET"]),
    Route(SIGNIN_PATH, signin_submit, methods=["POST"]),
    Route(SIGNOUT_PATH, signout, methods=["GET", "POST"]),
    Route(SSO_PATH, sso_start, methods=["GET"]),
]

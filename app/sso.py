"""Optional single sign-on (OIDC) through Streamlit's own `st.login` routes.

Set `[auth]` (redirect_uri, cookie_secret, and client_id/client_secret/server_metadata_url, or
one `[auth.NAME]` section per provider) in `$RLAIF_HOME/secrets.toml` or
`.streamlit/secrets.toml`, and install Authlib. The sign-in form then links to
`/auth/login?provider=...` (the URL `st.login(NAME)` sends the browser to). After the provider's
callback Streamlit holds the identity in its signed `_streamlit_user` cookie; the middleware
(app/security.py) hands it to `complete`, which maps the e-mail to a local active user
(`pipeline.auth.users.user_for_email`), starts one of our server-side sessions and drops Streamlit's
identity cookie, so that sign-out and revocation work the same for both ways of signing in.

This is the one module that uses Streamlit's auth internals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from db.session import session_scope
from pipeline.auth import sessions
from pipeline.auth import users as auth
from pipeline.auth.users import AuthUser

DENIED = (
    "Your single sign-on account has no access to this workbench. "
    "Ask an admin to add your e-mail address to a user."
)


@dataclass(frozen=True)
class Identity:
    """What the provider said about the person (from Streamlit's identity cookie)."""

    email: str | None
    email_verified: bool | None
    provider: str | None


def _auth_section() -> dict[str, Any]:
    try:
        from streamlit.auth_util import get_secrets_auth_section

        return dict(get_secrets_auth_section() or {})
    except Exception:  # no secrets file, or one that does not parse: no single sign-on
        return {}


def providers() -> list[str]:
    section = _auth_section()
    if not section.get("redirect_uri"):
        return []
    named = [k for k, v in section.items() if isinstance(v, Mapping) and "client_id" in v]
    return named or (["default"] if "client_id" in section else [])


def provider_links(start_path: str, next_path: str) -> list[tuple[str, str]]:
    """(label, URL) per configured provider; the URL is `start_path` (app/signin_web.py), which
    keeps `next` and goes on to the URL `st.login(provider)` opens."""
    links = []
    for name in providers():
        label = "single sign-on" if name == "default" else name.replace("-", " ").title()
        links.append((label, f"{start_path}?{urlencode({'provider': name, 'next': next_path})}"))
    return links


def login_url(provider: str) -> str | None:
    """Where `st.login(provider)` sends the browser; None for a provider not configured."""
    if provider not in providers():
        return None
    from streamlit.user_info import generate_login_redirect_url

    return generate_login_redirect_url(provider)


def identity_from(request: Request) -> Identity | None:
    """The identity in Streamlit's signed identity cookie, or None (absent, forged, stale)."""
    from streamlit.web.server.starlette import starlette_auth_routes as routes
    from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

    if USER_COOKIE_NAME not in request.cookies:
        return None
    try:
        raw = routes._get_cookie_value_from_request(request, USER_COOKIE_NAME)
        info = json.loads(raw) if raw else None
    except (ValueError, TypeError):
        return None
    if not isinstance(info, dict) or not info.get("is_logged_in"):
        return None
    verified = info.get("email_verified")
    return Identity(
        email=info.get("email") if isinstance(info.get("email"), str) else None,
        email_verified=verified if isinstance(verified, bool) else None,
        provider=info.get("provider"),
    )


def local_user(identity: Identity) -> AuthUser | None:
    with session_scope() as session:
        return auth.user_for_email(session, identity.email, identity.email_verified)


def start_session(user: AuthUser, address: str | None) -> str:
    with session_scope() as session:
        return sessions.create_session(session, user, via="oidc", address=address)


def clear_identity(response: Response, request: Request) -> None:
    """Drop Streamlit's identity cookies: after the hand-over only our session counts."""
    from streamlit.web.server.starlette import starlette_auth_routes as routes

    routes._clear_auth_cookie(response, request)

"""The sign-in routes and the security middleware (app/signin_web.py, app/security.py) over
HTTP on a bare Starlette app (no Streamlit needed), and the hand-over of Streamlit's single sign-on
identity cookie, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app import security, signin_web
from db.models import UserSession
from db.session import session_scope
from pipeline.auth import sessions
from pipeline.auth import users as auth

PASSWORD = "rita-password"


@pytest.fixture
def rita(db_url) -> auth.AuthUser:
    with session_scope() as session:
        user = auth.create_user(session, username="rita", password=PASSWORD, role="reviewer")
        return auth.AuthUser.of(user)


def _resolve(token: str):
    with session_scope() as session:
        return sessions.resolve(session, token)


def _page(request):
    return PlainTextResponse(f"page {request.url.path}")


@pytest.fixture
def client(rita):
    app = Starlette(
        routes=[*signin_web.ROUTES, Route("/{path:path}", _page)],
        middleware=[Middleware(security.SecurityMiddleware)],
    )
    with TestClient(app, base_url="http://testserver") as c:
        yield c


HTML = {"Accept": "text/html"}
ORIGIN = {"Origin": "http://testserver"}


def _post(client, username, password, next_path="/alignment", headers=ORIGIN):
    return client.post(
        "/signin?next=/ignored",
        data={"username": username, "password": password, "next": next_path},
        headers=headers,
        follow_redirects=False,
    )


def test_signed_out_page_load_goes_to_sign_in_and_back(client):
    response = client.get("/alignment?judge=2", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Falignment%3Fjudge%3D2"
    form = client.get(response.headers["location"])
    assert form.status_code == 200 and 'name="next" value="/alignment?judge=2"' in form.text
    signed_in = _post(client, "rita", PASSWORD, "/alignment?judge=2")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/alignment?judge=2"
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith(f"{sessions.COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=604800" in cookie
    assert "Secure" not in cookie  # plain http (loopback); https: see the next test
    assert client.get("/alignment", headers=HTML).text == "page /alignment"
    # Signed in, /signin goes straight on.
    again = client.get("/signin?next=/queue", follow_redirects=False)
    assert again.headers["location"] == "/queue"
    # Sign-out revokes and clears the cookie.
    out = client.get("/signout", follow_redirects=False)
    assert out.headers["location"] == "/signin?note=signed_out"
    assert 'rlaif_session=""' in out.headers["set-cookie"]
    with session_scope() as session:
        assert session.scalars(select(UserSession.revoked_at)).one() is not None


def test_cookie_is_secure_over_https(rita):
    app = Starlette(routes=signin_web.ROUTES)
    with TestClient(app, base_url="https://testserver") as c:
        response = _post(c, "rita", PASSWORD, headers={"Origin": "https://testserver"})
    assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]


@pytest.fixture
def slow_backoff(monkeypatch):
    """A first lock of 60 s: it outlasts the five argon2 checks on a slow machine."""
    from pipeline.auth.settings import throttle_settings

    monkeypatch.setenv("RLAIF_SIGNIN_BACKOFF_SECONDS", "60")
    throttle_settings.cache_clear()
    yield
    throttle_settings.cache_clear()


def test_one_message_for_every_failure_then_429(client, slow_backoff):
    unknown = _post(client, "nobody", "wrong-password")
    wrong = _post(client, "rita", "wrong-password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.text.replace("nobody", "rita") == wrong.text  # same page but the typed name
    assert "Wrong user name or password." in wrong.text
    for _ in range(3):
        _post(client, "rita", "wrong-password")
    locked = _post(client, "rita", PASSWORD)
    assert locked.status_code == 429 and 50 < int(locked.headers["retry-after"]) <= 60
    assert "Too many failed sign-ins" in locked.text and "set-cookie" not in locked.headers


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil", "x"])
def test_next_never_leaves_the_site(client, target):
    response = _post(client, "rita", PASSWORD, target)
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_cross_site_form_post_is_refused(client):
    response = _post(client, "rita", PASSWORD, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403 and "set-cookie" not in response.headers


def test_every_response_carries_the_csp(client):
    for response in (
        client.get("/signin"),
        client.get("/alignment", headers=HTML, follow_redirects=False),
        client.get("/_stcore/health"),
        _post(client, "rita", "wrong-password"),
    ):
        csp = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["img-src"] == "'self' data: blob:"
        assert directives["connect-src"] == "'self'"
        assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
        scripts = directives["script-src"]
        assert scripts.startswith("'self'") and "unsafe" not in scripts
        assert response.headers["x-content-type-options"] == "nosniff"


def test_revoked_cookie_is_sent_to_sign_in(client):
    token = _post(client, "rita", PASSWORD).cookies[sessions.COOKIE_NAME]
    with session_scope() as session:
        auth.update_user(session, username="rita", actor=None, password="another-password")
    response = client.get("/queue", headers=HTML, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin?next=%2Fqueue"
    assert _resolve(token) is None


def _identity_cookie(info: dict) -> str:
    from streamlit.web.server.server_util import get_cookie_secret
    from streamlit.web.server.starlette.starlette_app_utils import create_signed_value
    from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

    value = json.dumps({**info, "is_logged_in": True, "provider": "corp"})
    return create_signed_value(get_cookie_secret(), USER_COOKIE_NAME, value).decode()


def test_sso_identity_becomes_a_local_session(client):
    with session_scope() as session:
        auth.update_user(session, username="rita", actor=None, email="rita@example.org")
    client.cookies.set("_streamlit_user", _identity_cookie({"email": "rita@example.org"}))
    response = client.get("/", headers=HTML, follow_redirects=False)
    assert response.status_code == 200 and 'http-equiv="refresh"' in response.text
    set_cookies = response.headers.get_list("set-cookie")
    ours = next(c for c in set_cookies if c.startswith(f"{sessions.COOKIE_NAME}="))
    assert "HttpOnly" in ours and "SameSite=strict" in ours
    assert any(c.startswith('_streamlit_user=""') for c in set_cookies)  # identity dropped
    token = ours.split(";")[0].split("=", 1)[1]
    assert _resolve(token).username == "rita"
    with session_scope() as session:
        assert session.scalars(select(UserSession.via)).one() == "oidc"


@pytest.mark.parametrize(
    "info",
    [{"email": "eve@example.org"}, {"email": "rita@example.org", "email_verified": False}],
)
def test_sso_unknown_or_unverified_email_gets_no_access(client, info):
    with session_scope() as session:
        auth.update_user(session, username="rita", actor=None, email="rita@example.org")
    client.cookies.set("_streamlit_user", _identity_cookie(info))
    response = client.get("/", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?note=sso_denied"
    with session_scope() as session:
        assert session.scalars(select(UserSession.id)).all() == []


def test_forged_identity_cookie_is_ignored(client):
    client.cookies.set("_streamlit_user", json.dumps({"email": "rita@example.org"}))
    response = client.get("/", headers=HTML, follow_redirects=False)
    assert response.headers["location"] == "/signin?next=%2F"


def test_cross_site_fetch_metadata_is_refused(client):
    for site, status in (("cross-site", 403), ("same-site", 403), ("same-origin", 303)):
        headers = {"Sec-Fetch-Site": site, "Origin": "http://testserver"}
        assert _post(client, "rita", PASSWORD, headers=headers).status_code == status


def test_cross_site_link_reloads_from_this_site_before_deciding(client):
    """A link on another site does not carry the SameSite=Strict cookie: the page reloads itself
    from this origin (then it does) instead of asking a signed-in person to sign in again."""
    cross = {**HTML, "Sec-Fetch-Site": "cross-site"}
    response = client.get("/queue?x=1", headers=cross, follow_redirects=False)
    assert response.status_code == 200
    assert '<meta http-equiv="refresh" content="0;url=/queue?x=1">' in response.text
    same = {**HTML, "Sec-Fetch-Site": "same-origin"}
    response = client.get("/queue?x=1", headers=same, follow_redirects=False)
    assert response.status_code == 303


def test_the_address_cannot_put_text_on_the_form(client):
    page = client.get("/signin?note=Call+555-0100+to+unlock+your+account").text
    assert "555-0100" not in page and 'role="alert"' not in page
    assert "You are signed out." in client.get("/signin?note=signed_out").text


def test_a_request_path_never_redirects_off_site():
    from starlette.requests import Request

    for path in ("//evil.example/x", "/\\evil.example/x", "/queue"):
        scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": []}
        got = security._requested(Request(scope))
        assert got.startswith("/") and not got.startswith(("//", "/\\")), got
    scope["path"] = "/queue"
    assert security._requested(Request(scope)) == "/queue"

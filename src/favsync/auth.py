"""Blueprint: request a magic link; log in by link or typed code; refresh; log out.

Also the Bearer-token check every signed-in endpoint uses (`auth_required`).
"""
from __future__ import annotations

import functools

from flask import Blueprint, g, jsonify, request

from . import links, schemas, sessions
from .cookies import REFRESH_COOKIE, clear_refresh_cookie, set_refresh_cookie
from .errors import ApiError, invalid_refresh_token, unauthorized
from .limiting import client_ip
from .models import Client
from .signals import client_verified, notify
from .state import state
from .tokens import decode_auth_token

bp = Blueprint("auth", __name__)

LINK_SENT = "If that address can receive email, a sign-in link is on its way."


@bp.post("/magic-link")
def request_magic_link():
    """Email a one-time sign-in link and code, holding at most three pending per email."""
    body = schemas.parse(schemas.MagicLinkRequest)
    email = body.email
    next_path = body.next
    session_id = schemas.header("X-Session-ID", schemas.SessionId)
    links.request_link(
        email, next_path=next_path, session_id=session_id, host=request.host, ip=client_ip()
    )
    return {"success": True, "message": LINK_SENT}, 202


@bp.get("/verify/<token>")
def verify_magic_link(token: str):
    """Consume a magic link (or use a message token); return the auth token and favourites."""
    if request.method == "HEAD":  # mail scanners probe links; a probe logs no one in
        links.check_any(token)
        return "", 204
    return login_response(_redeem(token))


@bp.post("/verify")
def verify_magic_link_by_post():
    """Consume a magic link sent in the body (seed 002: `code` is accepted for `token`)."""
    token = schemas.parse(schemas.VerifyRequest).token
    return login_response(_redeem(token))


def _redeem(token: str) -> sessions.Login:
    """Log in with a magic-link secret or a message token, from this request's host and IP."""
    session_id = schemas.header("X-Session-ID", schemas.SessionId)
    return links.redeem_any(token, host=request.host, ip=client_ip(), session_id=session_id)


@bp.post("/verify-code")
def verify_code():
    """Log in with the six-digit code from the email, in the tab that asked for it."""
    body = schemas.parse(schemas.VerifyCodeRequest)
    email = body.email
    code = body.code
    state().limits.hit_code_attempt(client_ip())
    return login_response(links.redeem_code(email, code))


@bp.post("/token/refresh")
def refresh_auth_token():
    """Trade the refresh cookie for a new auth token and a new cookie."""
    secret = request.cookies.get(REFRESH_COOKIE)
    if not secret:
        raise invalid_refresh_token("No refresh cookie came with the request.")
    return login_response(sessions.rotate(secret))


@bp.post("/logout")
def log_out():
    """End this device's session; with {"all": true}, every session of the client."""
    everywhere = schemas.parse(schemas.LogoutRequest).all
    cookie = request.cookies.get(REFRESH_COOKIE, "")
    if everywhere:
        sessions.log_out_everywhere(_client_logging_out(cookie))
    else:
        sessions.end(cookie)
    response = jsonify(success=True)
    clear_refresh_cookie(response)
    return response


def login_response(login: sessions.Login):
    """Answer a login: the auth token (and, for link and code logins, the favourites), a new cookie."""
    body = {
        "success": True,
        "client_id": login.client_id,
        "auth_token": login.auth_token(),
        "email": login.email,
    }
    if login.favorites is not None:  # a link or code login, not a refresh
        body["favorites"] = login.favorites
        if login.redirect is not None:
            body["redirect"] = login.redirect
        notify(
            client_verified,
            session_id=login.session_id,
            client_id=login.client_id,
            brokerage_id=login.brokerage_id,
            email=login.email,
            created=login.created,
        )
    response = jsonify(body)
    set_refresh_cookie(response, login.refresh_secret)
    return response


def _client_logging_out(cookie: str) -> int:
    """The client named by the Bearer token, else by the refresh cookie; else 401."""
    try:
        return authenticate()
    except ApiError:
        owner = sessions.owner(cookie)
        if owner is None:
            raise
        return owner.client_id  # a stale auth token must not stop a log-out


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate() -> int:
    """Return the id of the client whose valid Bearer token came with this request, or raise 401."""
    token = bearer_token()
    if token is None:
        raise unauthorized("Send the auth token as 'Authorization: Bearer <token>'.")
    claims = decode_auth_token(state().settings, token)
    client_id = Client.authenticated(
        claims["client_id"], claims["brokerage_id"], claims["email"], claims["iat"]
    )
    if client_id is None:
        raise unauthorized("The auth token is no longer valid; sign in again.")
    return client_id


def auth_required(view):
    """Let the view run only for a client holding a valid Bearer token (its id in g.client_id)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        g.client_id = authenticate()
        return view(*args, **kwargs)

    return wrapped

"""Blueprints: request a magic link; log in by link or typed code; refresh; log out.

`bp` lives under favsync's prefix; `seed_bp` serves seed 002's login at
FAVSYNC_AUTH_URL_PREFIX. Also the Bearer-token check every signed-in endpoint
uses (`auth_required`), and `current_client()`, which tells a host's pages who
is signed in.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from flask import Blueprint, Request, g, jsonify, request

from . import links, schemas, sessions
from .cookies import REFRESH_COOKIE, clear_refresh_cookie, set_refresh_cookie
from .database import session
from .errors import ApiError, invalid_refresh_token, token_no_longer_valid, unauthorized
from .guards import not_stored, same_site_only
from .limiting import client_ip
from .models import Client, Credentials
from .signals import client_verified, notify
from .state import settings, state
from .tokens import decode_auth_token

bp = Blueprint("auth", __name__)
seed_bp = Blueprint("favsync_auth", __name__)

LINK_SENT = "If that address can receive email, a sign-in link is on its way."
PROVIDER = "magic_link"


@bp.post("/magic-link")
def request_magic_link():
    """Email a one-time sign-in link and code, holding at most three pending per email."""
    body = schemas.parse(schemas.MagicLinkRequest)
    email = body.email
    next_path = body.next
    links.request_link(
        email, next_path=next_path, session_id=_session_id(), host=request.host, ip=client_ip()
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
    return links.redeem_any(token, host=request.host, ip=client_ip(), session_id=_session_id())


@bp.post("/verify-code")
def verify_code():
    """Log in with the code typed from the email, in the tab that asked for it."""
    body = schemas.parse(schemas.VerifyCodeRequest)
    email = body.email
    code = body.code
    state().limits.hit_code_attempt(client_ip())
    return login_response(links.redeem_code(email, code, session_id=_session_id()))


@seed_bp.post("/magic-link/verify")
def verify_magic_link_code():
    """Seed 002: use the emailed link's code (or a message's token); answer a LoginResponse."""
    body = schemas.parse_seed(schemas.MagicLinkVerifyBody)
    return seed_login_response(_redeem(body.code), deal_id=body.deal_id)


@bp.post("/token/refresh")
@same_site_only
def refresh_auth_token():
    """Trade the refresh cookie for a new auth token and a new cookie."""
    secret = request.cookies.get(REFRESH_COOKIE)
    if not secret:
        raise invalid_refresh_token("No refresh cookie came with the request.")
    return login_response(sessions.rotate(secret))


@bp.post("/logout")
@same_site_only
def log_out():
    """End this device's session; with {"all": true}, every session of the client."""
    everywhere = schemas.parse(schemas.LogoutRequest).all
    here = _sessions_here(request.cookies.get(REFRESH_COOKIE, ""))
    if everywhere:
        if not here:
            raise unauthorized("Send the auth token or the refresh cookie to log out everywhere.")
        sessions.log_out_everywhere(here[0].client_id)
    else:
        sessions.end({session.family for session in here})
    response = jsonify(success=True)
    clear_refresh_cookie(response)
    return response


def _session_id() -> str | None:
    """The browser's anonymous X-Session-ID, if it sent one."""
    return schemas.header("X-Session-ID", schemas.SessionId)


def login_response(login: sessions.Login):
    """Answer a login in favsync's contract: the auth token (and, for link and code logins,
    the favourites)."""
    body = {
        "success": True,
        "client_id": login.client_id,
        "auth_token": login.auth_token(),
        "email": login.email,
    }
    if login.favorites is not None:  # a link or code login, not a refresh
        body["favorites"] = login.favorites
        body["version"] = login.favorites_version
        body["same_browser"] = login.same_browser
        if login.redirect is not None:
            body["redirect"] = login.redirect
    return _logged_in(jsonify(body), login)


def seed_login_response(login: sessions.Login, *, deal_id: str | None):
    """Answer a login in seed 002's contract (LoginResponse), the host's hooks filling it in."""
    hooks = state().hooks
    profile = hooks.profile_of(login)
    body = {
        "access_token": login.auth_token(),
        "user": {
            "id": str(login.client_id),
            "display_name": profile.display_name,
            "email": login.email,
            "avatar_url": profile.avatar_url,
            "provider": PROVIDER,
        },
        "expires_in_minutes": settings().auth_token_ttl // 60,
        "has_deals": profile.has_deals,
        "force_password_change": False,  # there is no password
        "matomo_visitor_id": profile.matomo_visitor_id,
        "redirect_deal_id": hooks.allowed_deal(login, deal_id),
    }
    return _logged_in(jsonify(body), login)


def _logged_in(response, login: sessions.Login):
    """Tell the host about a new sign-in, and set the refresh cookie (never in a body)."""
    if login.favorites is not None:  # a link or code login, not a refresh
        notify(client_verified, **login.visitor(), created=login.created)
    response.headers["Cache-Control"] = "no-store"  # the answer carries credentials
    if login.refresh_secret is not None:  # a replay within the grace window keeps its cookie
        max_age = int((login.refresh_expires_at - login.at).total_seconds())
        set_refresh_cookie(response, login.refresh_secret, max_age)
    return response


def _sessions_here(cookie: str) -> list[sessions.Held]:
    """The sessions this device proves it holds: its Bearer token's, its refresh cookie's."""
    here = []
    if bearer_token() is not None:
        try:
            held = _checked_credentials()
            here.append(sessions.Held(held.client_id, held.session_id))
        except ApiError:
            pass  # a stale auth token must not stop a log-out
    held = sessions.owner(cookie)
    if held is not None:
        here.append(held)
    return here


@dataclass(frozen=True)
class CurrentClient:
    """The client signed in on a request, as a host's pages see it."""

    id: int
    brokerage_id: int
    email: str


def current_client() -> CurrentClient | None:
    """The client signed in by this request's Bearer token or refresh cookie, else None.

    For a host's pages. Read only: the refresh cookie is checked, never rotated.
    """
    try:
        client_id = authenticate()
    except ApiError:
        held = sessions.owner(request.cookies.get(REFRESH_COOKIE, ""))
        if held is None:
            return None
        client_id = held.client_id
    client = session().get(Client, client_id)
    if client is None:  # deleted a moment ago
        return None
    return CurrentClient(client.id, client.brokerage_id, client.email)


def bearer_token() -> str | None:
    return _bearer_token_of(request._get_current_object())


def _bearer_token_of(asked: Request) -> str | None:
    scheme, _, token = asked.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def credentials() -> Credentials:
    """What this request's Bearer token claims, and the host it came to; raise 401 if the
    token is missing, forged or expired. Whether they still hold is not checked here."""
    # The request itself, not each attribute through the proxy (several times the cost).
    asked = request._get_current_object()
    token = _bearer_token_of(asked)
    if token is None:
        raise unauthorized("Send the auth token as 'Authorization: Bearer <token>'.")
    claims = decode_auth_token(settings(), token)
    return Credentials(
        client_id=claims["client_id"],
        brokerage_id=claims["brokerage_id"],
        email=claims["email"],
        issued_at=claims["iat"],
        session_id=claims["sid"],
        host=asked.host,
    )


def authenticate() -> int:
    """Return the id of the client whose valid Bearer token came with this request, or raise 401."""
    return _checked_credentials().client_id


def _checked_credentials() -> Credentials:
    """This request's credentials, if its client and session are live on this host; else raise 401."""
    held = credentials()
    if Client.authenticated(held) is None:
        raise token_no_longer_valid()
    return held


def auth_required(view):
    """Let the view run only for a client holding a valid Bearer token (its id in g.client_id)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        g.client_id = authenticate()
        not_stored()
        return view(*args, **kwargs)

    return wrapped


def credentials_required(view):
    """Like auth_required, for a view whose one domain call checks the credentials itself:
    they come to the view as its first argument (as claimed; valid once that call returns).

    The favourites views read the client's data in the statement that checks the
    token (the domain raises 401 when it no longer holds): one round trip, not two.
    """

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        held = credentials()
        not_stored()
        return view(held, *args, **kwargs)

    return wrapped

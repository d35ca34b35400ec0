"""Blueprint: request a magic link; log in by link or typed code; refresh; log out."""
import logging

from flask import Blueprint, current_app, jsonify, request, url_for

from . import validation
from .cookies import REFRESH_COOKIE, clear_refresh_cookie, set_refresh_cookie
from .errors import ApiError, unauthorized
from .limiting import client_ip
from .models import (
    Brokerage,
    Login,
    MagicLink,
    log_out_everywhere,
    redeem_magic_code,
    redeem_magic_link,
    end_refresh_session,
    refresh_token_owner,
    rotate_refresh_token,
    sha256_hex,
)
from .requestlog import mask_email
from .signals import client_verified, notify
from .tokens import (
    authenticate,
    code_digest,
    is_magic_secret,
    issue_auth_token,
    new_code,
    new_magic_secret,
)

bp = Blueprint("auth", __name__)
log = logging.getLogger("favsync.auth")

LINK_SENT = "If that address can receive email, a sign-in link is on its way."


def _favsync():
    return current_app.extensions["favsync"]


@bp.post("/magic-link")
def request_magic_link():
    """Email a one-time sign-in link and code, holding at most three pending per email."""
    body = validation.json_object()
    email = validation.email(body)
    next_path = validation.next_path(body)
    session_id = validation.session_id()
    favsync = _favsync()
    favsync.limits.hit_magic_link(email, client_ip())

    brokerage = Brokerage.for_host(request.host)
    brokerage_name = brokerage.name  # read now: the commit in issue() expires it
    secret, token_digest = new_magic_secret()
    code, typed_code_digest = new_code(email)
    link = MagicLink.issue(
        brokerage,
        email,
        token_digest,
        session_id,
        code_digest=typed_code_digest,
        next_path=next_path,
        ttl=favsync.settings.magic_link_ttl,
        max_pending=favsync.settings.magic_link_max_pending,
    )
    try:
        favsync.limits.hit_email_sent()
        favsync.mailer.send_magic_link(
            to=email,
            brokerage=brokerage_name,
            url=_magic_link_url(secret),
            code=code,
            minutes=favsync.settings.magic_link_ttl // 60,
        )
    except Exception:
        link.withdraw()  # a link nobody received must not hold a pending slot
        raise
    log.info("magic link sent to %s", mask_email(email))
    return {"success": True, "message": LINK_SENT}, 202


def _magic_link_url(secret: str) -> str:
    template = _favsync().settings.magic_link_url
    if template is None:
        return url_for(".verify_magic_link", token=secret, _external=True)
    return template.replace("{token}", secret)


@bp.get("/verify/<token>")
def verify_magic_link(token: str):
    """Consume a magic link and return the client's auth token and favourites."""
    if request.method == "HEAD":  # mail scanners probe links; a probe logs no one in
        _check_magic_secret(token)
        return "", 204
    return _log_in_with_link(token)


@bp.post("/verify")
def verify_magic_link_by_post():
    """Consume a magic link sent in the body (seed 002: `code` is accepted for `token`)."""
    return _log_in_with_link(validation.login_token(validation.json_object()))


def _check_magic_secret(token: str) -> None:
    if not is_magic_secret(token):
        raise ApiError(400, "invalid_token", "This sign-in link is not valid.")


def _log_in_with_link(token: str):
    _check_magic_secret(token)
    ttl = _favsync().settings.refresh_token_ttl
    return _logged_in(redeem_magic_link(sha256_hex(token), refresh_ttl=ttl))


@bp.post("/verify-code")
def verify_code():
    """Log in with the six-digit code from the email, in the tab that asked for it."""
    body = validation.json_object()
    email = validation.email(body)
    code = validation.typed_code(body)
    favsync = _favsync()
    favsync.limits.hit_code_attempt(client_ip())
    ttl = favsync.settings.refresh_token_ttl
    return _logged_in(redeem_magic_code(email, code_digest(email, code), refresh_ttl=ttl))


def _logged_in(login: Login):
    notify(
        client_verified,
        session_id=login.session_id,
        client_id=login.client_id,
        brokerage_id=login.brokerage_id,
        email=login.email,
    )
    body = {
        "success": True,
        "client_id": login.client_id,
        "auth_token": issue_auth_token(
            login.client_id,
            login.brokerage_id,
            login.email,
            not_before=login.not_before,
            now=login.at,
        ),
        "favorites": login.favorites,
        "email": login.email,
    }
    if login.redirect is not None:
        body["redirect"] = login.redirect
    response = jsonify(body)
    set_refresh_cookie(response, login.refresh_secret)
    return response


@bp.post("/token/refresh")
def refresh_auth_token():
    """Trade the refresh cookie for a new auth token and a new cookie."""
    secret = request.cookies.get(REFRESH_COOKIE)
    if not secret:
        raise unauthorized("No refresh cookie came with the request.", "invalid_refresh_token")
    refresh = rotate_refresh_token(secret, ttl=_favsync().settings.refresh_token_ttl)
    response = jsonify(
        success=True,
        client_id=refresh.client_id,
        email=refresh.email,
        auth_token=issue_auth_token(
            refresh.client_id,
            refresh.brokerage_id,
            refresh.email,
            not_before=refresh.not_before,
            now=refresh.at,
        ),
    )
    set_refresh_cookie(response, refresh.refresh_secret)
    return response


@bp.post("/logout")
def log_out():
    """End this device's session; with {"all": true}, every session of the client."""
    everywhere = validation.log_out_everywhere(validation.optional_json_object())
    cookie = request.cookies.get(REFRESH_COOKIE, "")
    if everywhere:
        log_out_everywhere(_client_logging_out(cookie))
    else:
        end_refresh_session(cookie)
    response = jsonify(success=True)
    clear_refresh_cookie(response)
    return response


def _client_logging_out(cookie: str) -> int:
    """The client named by the Bearer token, else by the refresh cookie; else 401."""
    try:
        return authenticate()
    except ApiError:
        owner = refresh_token_owner(cookie) if cookie else None
        if owner is None:
            raise
        return owner.client_id  # a stale auth token must not stop a log-out

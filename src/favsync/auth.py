"""Blueprint: request a magic link, and verify it."""
import logging

from flask import Blueprint, current_app, request, url_for

from . import validation
from .errors import ApiError
from .models import Brokerage, MagicLink, redeem_magic_link
from .requestlog import mask_email
from .signals import client_verified, notify
from .tokens import digest, is_magic_secret, issue_auth_token, new_magic_secret

bp = Blueprint("auth", __name__)
log = logging.getLogger("favsync.auth")

LINK_SENT = "If that address can receive email, a sign-in link is on its way."


@bp.post("/magic-link")
def request_magic_link():
    """Email a one-time sign-in link, holding at most three pending per email."""
    email = validation.email(validation.json_object())
    session_id = validation.session_id()
    favsync = current_app.extensions["favsync"]
    favsync.limits.hit_magic_link(email, request.remote_addr)

    brokerage = Brokerage.for_host(request.host)
    brokerage_name = brokerage.name
    secret, token_digest = new_magic_secret()
    link = MagicLink.issue(
        brokerage,
        email,
        token_digest,
        session_id,
        ttl=favsync.settings.magic_link_ttl,
        max_pending=favsync.settings.magic_link_max_pending,
    )
    try:
        favsync.mailer.send_magic_link(
            to=email,
            brokerage=brokerage_name,
            url=_magic_link_url(secret),
            minutes=favsync.settings.magic_link_ttl // 60,
        )
    except ApiError:
        link.withdraw()  # a link nobody received must not hold a pending slot
        raise
    log.info("magic link sent to %s", mask_email(email))
    return {"success": True, "message": LINK_SENT}, 202


def _magic_link_url(secret: str) -> str:
    template = current_app.extensions["favsync"].settings.magic_link_url
    if template is None:
        return url_for("favsync.auth.verify_magic_link", token=secret, _external=True)
    return template.replace("{token}", secret)


@bp.get("/verify/<token>")
def verify_magic_link(token: str):
    """Consume a magic link and return the client's auth token and favourites."""
    if request.method == "HEAD":
        return "", 204  # mail scanners probe links with HEAD; it must not log anyone in
    if not is_magic_secret(token):
        raise ApiError(400, "invalid_token", "This sign-in link is not valid.")
    login = redeem_magic_link(digest(token))
    notify(
        client_verified,
        session_id=login.session_id,
        client_id=login.client_id,
        brokerage_id=login.brokerage_id,
        email=login.email,
    )
    return {
        "success": True,
        "client_id": login.client_id,
        "auth_token": issue_auth_token(login.client_id, login.brokerage_id, login.email),
        "favorites": login.favorites,
        "email": login.email,
    }

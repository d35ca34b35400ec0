"""The refresh-token cookie: HttpOnly, never in a response body."""
from flask import Response, url_for

from .state import settings

REFRESH_COOKIE = "favsync_refresh"


def _path() -> str:
    # By default favsync's API path, wherever the host mounted it: both
    # /token/refresh and /logout need the cookie, no other path of the site gets
    # it. A host whose pages call favsync.current_client() sets "/".
    configured = settings().refresh_cookie_path
    if configured:
        return configured
    return url_for("favsync.auth.refresh_auth_token").removesuffix("/token/refresh") or "/"


def set_refresh_cookie(response: Response, secret: str, max_age: int) -> None:
    config = settings()
    response.headers["Cache-Control"] = "no-store"  # the answer carries credentials
    response.set_cookie(
        REFRESH_COOKIE,
        secret,
        max_age=max_age,
        path=_path(),
        secure=config.refresh_cookie_secure,
        httponly=True,
        samesite=config.refresh_cookie_samesite,
        # Partitioned (CHIPS): browsers that block third-party cookies keep it per top-level site.
        partitioned=config.refresh_cookie_partitioned,
    )


def clear_refresh_cookie(response: Response) -> None:
    config = settings()
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(
        REFRESH_COOKIE,
        path=_path(),
        secure=config.refresh_cookie_secure,
        httponly=True,
        samesite=config.refresh_cookie_samesite,
        partitioned=config.refresh_cookie_partitioned,
    )

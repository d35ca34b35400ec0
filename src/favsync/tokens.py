"""Magic-link secrets and the favourites JWT: issue them, check them."""
from __future__ import annotations

import functools
import hashlib
import re
import secrets
from datetime import datetime

import jwt
from flask import current_app, g, request

from .database import utcnow
from .errors import ApiError
from .models import Client

TOKEN_TYPE = "favorites_auth"
ALGORITHMS = ["HS256"]
REQUIRED_CLAIMS = ["client_id", "brokerage_id", "email", "exp", "iat", "type"]
# token_urlsafe(32): 32 random bytes, 43 URL-safe base64 characters.
MAGIC_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")


def new_magic_secret() -> tuple[str, str]:
    """Return a fresh emailed secret and the digest that is stored in its place."""
    secret = secrets.token_urlsafe(32)
    return secret, digest(secret)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_magic_secret(value: str) -> bool:
    return MAGIC_SECRET.fullmatch(value) is not None


def issue_auth_token(
    client_id: int, brokerage_id: int, email: str, now: datetime | None = None
) -> str:
    """Sign the seed's favourites JWT for a client."""
    settings = current_app.extensions["favsync"].settings
    issued_at = int((now or utcnow()).timestamp())
    claims = {
        "client_id": client_id,
        "brokerage_id": brokerage_id,
        "email": email,
        "exp": issued_at + settings.auth_token_ttl,
        "iat": issued_at,
        "type": TOKEN_TYPE,
    }
    return jwt.encode(claims, settings.jwt_secret_key, algorithm="HS256")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def decode_auth_token(token: str) -> dict:
    """Return the claims of a valid favourites JWT, or raise a 401 ApiError."""
    settings = current_app.extensions["favsync"].settings
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret_key,
            algorithms=ALGORITHMS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The auth token has expired; sign in again.") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("The auth token is not valid.") from None
    if (
        claims["type"] != TOKEN_TYPE
        or type(claims["client_id"]) is not int
        or type(claims["brokerage_id"]) is not int
        or not isinstance(claims["email"], str)
    ):
        raise _unauthorized("The auth token is not valid.")
    return claims


def auth_required(view):
    """Let the view run only for a client holding a valid Bearer token (in g.client)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("Send the auth token as 'Authorization: Bearer <token>'.")
        claims = decode_auth_token(token.strip())
        client = Client.authenticated(claims["client_id"], claims["brokerage_id"], claims["email"])
        if client is None:
            raise _unauthorized("The auth token's client no longer exists.")
        g.client = client
        return view(*args, **kwargs)

    return wrapped

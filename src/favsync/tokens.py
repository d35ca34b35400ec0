"""Magic-link secrets, typed codes and the favourites JWT: issue them, check them."""
from __future__ import annotations

import functools
import hmac
import re
import secrets
from datetime import datetime

import jwt
from flask import current_app, g, request

from .database import utcnow
from .errors import unauthorized
from .models import Client, sha256_hex

TOKEN_TYPE = "favorites_auth"
ALGORITHMS = ["HS256"]
REQUIRED_CLAIMS = ["client_id", "brokerage_id", "email", "exp", "iat", "type"]
# Hosts' clocks differ a little; so can a token's iat when it is held back to
# the second a client last logged out everywhere (see issue_auth_token).
LEEWAY_SECONDS = 5
# token_urlsafe(32): 32 random bytes, 43 URL-safe base64 characters.
MAGIC_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")


def _settings():
    return current_app.extensions["favsync"].settings


def new_magic_secret() -> tuple[str, str]:
    """Return a fresh emailed secret and the digest that is stored in its place."""
    secret = secrets.token_urlsafe(32)
    return secret, sha256_hex(secret)


def is_magic_secret(value: str) -> bool:
    return MAGIC_SECRET.fullmatch(value) is not None


def new_code(email: str) -> tuple[str, str]:
    """Return a fresh six-digit code for `email` and the keyed hash that is stored."""
    code = f"{secrets.randbelow(10**6):06d}"
    return code, code_digest(email, code)


def code_digest(email: str, code: str) -> str:
    # Keyed: an unkeyed hash of six digits is reversed by trying all million.
    key = _settings().secret_key.encode()
    return hmac.new(key, f"favsync-code:{email}:{code}".encode(), "sha256").hexdigest()


def issue_auth_token(
    client_id: int,
    brokerage_id: int,
    email: str,
    *,
    not_before: int = 0,
    now: datetime | None = None,
) -> str:
    """Sign the seed's favourites JWT for a client, with the active key."""
    settings = _settings()
    # A token must not predate the client's last "log out everywhere" (whole
    # seconds, rounded up), or it would be refused at once.
    issued_at = max(int((now or utcnow()).timestamp()), not_before)
    claims = {
        "client_id": client_id,
        "brokerage_id": brokerage_id,
        "email": email,
        "exp": issued_at + settings.auth_token_ttl,
        "iat": issued_at,
        "type": TOKEN_TYPE,
    }
    kid = settings.jwt_active_kid
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, settings.jwt_keys[kid], algorithm="HS256", headers=headers)


def decode_auth_token(token: str) -> dict:
    """Return the claims of a valid favourites JWT, or raise a 401 ApiError."""
    keys = _settings().jwt_keys
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        if kid not in keys:
            raise unauthorized("The auth token was signed with a key this service does not hold.")
        claims = jwt.decode(
            token,
            keys[kid],
            algorithms=ALGORITHMS,
            options={"require": REQUIRED_CLAIMS},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise unauthorized("The auth token has expired; sign in again.") from None
    except (jwt.InvalidTokenError, TypeError):  # TypeError: an unhashable kid
        raise unauthorized("The auth token is not valid.") from None
    if (
        claims["type"] != TOKEN_TYPE
        or not all(_is_int64(claims[name]) for name in ("client_id", "brokerage_id", "iat"))
        or not isinstance(claims["email"], str)
    ):
        raise unauthorized("The auth token is not valid.")
    return claims


def _is_int64(value) -> bool:
    # The database's integers are 64-bit; a bigger one would fail there, not here.
    return type(value) is int and -(2**63) <= value < 2**63


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
    claims = decode_auth_token(token)
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

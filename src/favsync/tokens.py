"""Pure crypto: emailed secrets, typed codes, digests, and the favourites JWT."""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import uuid

import jwt
from jwt.utils import base64url_decode

from .config import Settings
from .errors import unauthorized

TOKEN_TYPE = "favorites_auth"
ALGORITHMS = ["HS256"]
# Seed 000's claims, and sid: the session (refresh family) a logout ends.
REQUIRED_CLAIMS = ["client_id", "brokerage_id", "email", "exp", "iat", "type", "sid"]
# Hosts' clocks differ a little; so can a token's iat when it is held back to
# the second a client last logged out everywhere (see sessions.Login).
LEEWAY_SECONDS = 5
# token_urlsafe(32): 32 random bytes, 43 URL-safe base64 characters.
MAGIC_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
# Typed codes: 8 characters (40 bits) with nothing to misread (no 0/O, no 1/I),
# shown as K7QM-3XPD. README.md "Guessing budget" says why 8.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8
# A UUID, in any case: a message token (seed 001), a browser's session id.
UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# A brokerage server's API key: fsk_ and a 32-byte secret.
API_KEY = re.compile(r"fsk_[A-Za-z0-9_-]{43}")


def sha256_hex(secret: str) -> str:
    """The digest stored in place of an emailed or cookie secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> tuple[str, str]:
    """Return a fresh 32-byte URL-safe secret and the digest that is stored in its place."""
    secret = secrets.token_urlsafe(32)
    return secret, sha256_hex(secret)


def is_magic_secret(value: str) -> bool:
    return MAGIC_SECRET.fullmatch(value) is not None


def new_message_token() -> tuple[str, str]:
    """Return a fresh message token (a UUIDv4: os.urandom, a CSPRNG) and its stored digest."""
    token = str(uuid.uuid4())
    return token, sha256_hex(token)


def is_message_token(value: str) -> bool:
    return UUID.fullmatch(value) is not None


def message_token_digest(token: str) -> str:
    """The stored digest of a message token, however its hex digits are cased."""
    return sha256_hex(token.lower())


def new_api_key() -> tuple[str, str]:
    """Return a fresh API key and the digest that is stored in its place."""
    key = "fsk_" + secrets.token_urlsafe(32)
    return key, sha256_hex(key)


def is_api_key(value: str) -> bool:
    return API_KEY.fullmatch(value) is not None


def new_code(key: str, email: str) -> tuple[str, str]:
    """Return a fresh typed code for `email`, as emailed (K7QM-3XPD), and the keyed hash that is stored."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{code[:4]}-{code[4:]}", code_digest(key, email, code)


def code_digest(key: str, email: str, code: str) -> str:
    """The keyed hash of a typed code, its letters upper-case, without separator."""
    # Keyed: an unkeyed hash of a 40-bit code is reversed by trying them all.
    return hmac.new(key.encode(), f"favsync-code:{email}:{code}".encode(), "sha256").hexdigest()


def encode_auth_token(
    settings: Settings, *, client_id: int, brokerage_id: int, email: str, issued_at: int,
    session: str,
) -> str:
    """Sign the seed's favourites JWT, for one session (refresh family), with the active key."""
    claims = {
        "client_id": client_id,
        "brokerage_id": brokerage_id,
        "email": email,
        "exp": issued_at + settings.auth_token_ttl,
        "iat": issued_at,
        "type": TOKEN_TYPE,
        "sid": session,
    }
    kid = settings.jwt_active_kid
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, settings.jwt_keys[kid], algorithm="HS256", headers=headers)


def decode_auth_token(settings: Settings, token: str) -> dict:
    """Return the claims of a valid favourites JWT, or raise a 401 ApiError."""
    keys = settings.jwt_keys
    try:
        kid = _named_key(token)
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
    except (jwt.InvalidTokenError, TypeError):  # TypeError: a header PyJWT does not expect
        raise unauthorized("The auth token is not valid.") from None
    if (
        claims["type"] != TOKEN_TYPE
        or not all(_is_int64(claims[name]) for name in ("client_id", "brokerage_id", "iat"))
        or not isinstance(claims["email"], str)
        or not isinstance(claims["sid"], str)
    ):
        raise unauthorized("The auth token is not valid.")
    return claims


def _named_key(token: str):
    """The key id (kid) the token's header names, if any: read only to choose the key.

    Not jwt.get_unverified_header: jwt.decode then parses and checks the same
    header again, and every signed-in request pays for both.
    """
    kid = _kid_of_header(token.partition(".")[0])
    if kid is _NOT_A_HEADER:
        raise unauthorized("The auth token is not valid.")
    return kid


_NOT_A_HEADER = object()


@functools.lru_cache(maxsize=64)
def _kid_of_header(segment: str):
    # Remembered: every token this service signs with one key has the same header.
    try:
        header = json.loads(base64url_decode(segment))
    except (ValueError, RecursionError):  # bad base64, JSON or UTF-8; absurdly deep JSON
        return _NOT_A_HEADER
    if not isinstance(header, dict):
        return _NOT_A_HEADER
    kid = header.get("kid")
    # A list or an object names no key, and would be a mutable answer to remember.
    return kid if kid is None or isinstance(kid, (str, int, float)) else _NOT_A_HEADER


def _is_int64(value) -> bool:
    # The database's integers are 64-bit; a bigger one would fail there, not here.
    return type(value) is int and -(2**63) <= value < 2**63

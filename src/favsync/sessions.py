"""Sessions: what a login establishes, and refresh-token families (rotate, detect reuse, log out)."""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa

from . import outbox
from .database import session, utcnow
from .errors import invalid_refresh_token, refresh_token_reused
from .models import Client, RefreshToken
from .state import settings
from .sync import current, forget_session
from .tokens import encode_auth_token, new_secret, sha256_hex

# Two tabs refreshing at once, or a retry after a lost answer, present a token
# that was rotated a moment ago: within this window that is not theft.
REFRESH_REUSE_GRACE = timedelta(seconds=30)


@dataclass(frozen=True)
class Login:
    """A client signed in, by a magic link, a typed code or a refresh cookie."""

    client_id: int
    brokerage_id: int
    email: str
    family: str  # the session: its auth tokens carry it as `sid`, a logout ends it
    # The new refresh cookie and when it expires; None for a replay within the grace
    # window, whose browser already holds the successor.
    refresh_secret: str | None
    refresh_expires_at: datetime | None
    not_before: int  # the client's tokens_valid_after: the earliest iat its tokens may carry
    at: datetime  # when it happened: the iat of its token, so a later logout covers it
    # Set by link and code logins only:
    created: bool = False  # the client (the lead) did not exist before
    session_id: str | None = None
    same_browser: bool | None = None  # the browser verifying is the one that asked
    favorites: list[str] | None = None
    favorites_version: int | None = None
    redirect: str | None = None

    def visitor(self) -> dict:
        """Who signed in, as the host's signals and hooks receive it."""
        return {
            "session_id": self.session_id,
            "client_id": self.client_id,
            "brokerage_id": self.brokerage_id,
            "email": self.email,
        }

    def auth_token(self) -> str:
        """The favourites JWT for this login."""
        # A token must not predate the client's last "log out everywhere" (whole
        # seconds, rounded up), or it would be refused at once.
        issued_at = max(int(self.at.timestamp()), self.not_before)
        return encode_auth_token(
            settings(),
            client_id=self.client_id,
            brokerage_id=self.brokerage_id,
            email=self.email,
            issued_at=issued_at,
            session=self.family,
        )


@dataclass(frozen=True)
class Refresh:
    """A refresh token just issued: the cookie's secret, its family, when it expires."""

    secret: str
    family: str
    expires_at: datetime


def sign_in(
    client_id: int, *, brokerage_id: int, email: str, not_before: int, now: datetime,
    created: bool = False, session_id: str | None = None, same_browser: bool = False,
    redirect: str | None = None,
) -> Login:
    """Finish a link, code or message-token login in the caller's transaction, and commit:
    open a refresh family, start the browser's sync over, and tell the CRM.

    `not_before` is the client's tokens_valid_after; `session_id` the X-Session-ID that
    asked for the login (a link's), `same_browser` whether the one verifying is it.
    """
    listing = current(client_id)
    if session_id is not None:
        forget_session(client_id, session_id)  # its first sync after a login is a union
    refresh = start_family(client_id, now)
    outbox.add_event("client.verified", {
        "client_id": client_id,
        "brokerage_id": brokerage_id,
        "email": email,
        "session_id": session_id,
        "created": created,
    })
    session().commit()
    return Login(
        client_id=client_id,
        brokerage_id=brokerage_id,
        email=email,
        family=refresh.family,
        refresh_secret=refresh.secret,
        refresh_expires_at=refresh.expires_at,
        not_before=not_before,
        at=now,
        created=created,
        session_id=session_id,
        same_browser=same_browser,
        favorites=listing.favorites,
        favorites_version=listing.version,
        redirect=redirect,
    )


def start_family(client_id: int, now: datetime) -> Refresh:
    """Open a new refresh family (a session) for a login, in the caller's transaction."""
    return _issue(client_id, now, family=str(uuid.uuid4()), started_at=now)


def _issue(client_id: int, now: datetime, *, family: str, started_at: datetime) -> Refresh:
    config = settings()
    secret, digest = new_secret()
    expires_at = min(
        now + timedelta(seconds=config.refresh_token_ttl),
        started_at + timedelta(seconds=config.refresh_absolute_ttl),
    )
    session().execute(
        sa.insert(RefreshToken).values(
            client_id=client_id,
            family=family,
            token=digest,
            created_at=now,
            expires_at=expires_at,
            family_started_at=started_at,
        )
    )
    return Refresh(secret, family, expires_at)


def rotate(secret: str) -> Login:
    """Swap a live refresh token for its one successor; a reused one revokes the family.

    Within the grace window, the token just rotated gets a new auth token but no
    new refresh token: the browser that rotated it holds the successor, so the
    family never has more than one live token.
    """
    db = session()
    now = utcnow()
    digest = sha256_hex(secret)
    # One conditional UPDATE decides a race: exactly one request rotates the token.
    rotated = db.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.token == digest, RefreshToken.live(now))
        .values(rotated_at=now)
        .returning(RefreshToken.client_id, RefreshToken.family, RefreshToken.family_started_at)
        .execution_options(synchronize_session=False)
    ).first()
    if rotated is not None:
        successor = _issue(
            rotated.client_id, now, family=rotated.family, started_at=rotated.family_started_at
        )
        client_id, family = rotated.client_id, rotated.family
    else:
        replayed = db.execute(
            sa.select(RefreshToken.client_id, RefreshToken.family).where(
                RefreshToken.token == digest,
                RefreshToken.rotated_at > now - REFRESH_REUSE_GRACE,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
        ).first()
        if replayed is None:
            _refuse(digest, now)
        successor = None
        client_id, family = replayed.client_id, replayed.family
    client = db.execute(
        sa.select(Client.brokerage_id, Client.email, Client.tokens_valid_after).where(
            Client.id == client_id
        )
    ).one()
    db.commit()
    return Login(
        client_id=client_id,
        brokerage_id=client.brokerage_id,
        email=client.email,
        family=family,
        refresh_secret=None if successor is None else successor.secret,
        refresh_expires_at=None if successor is None else successor.expires_at,
        not_before=client.tokens_valid_after,
        at=now,
    )


def _refuse(digest: str, now: datetime):
    db = session()
    token = db.execute(
        sa.select(RefreshToken.family, RefreshToken.rotated_at, RefreshToken.revoked_at).where(
            RefreshToken.token == digest
        )
    ).first()
    if token is not None and token.rotated_at is not None and token.revoked_at is None:
        # A rotated token came back: someone kept a copy. End the whole family.
        _revoke_families({token.family}, now)
        db.commit()
        raise refresh_token_reused()
    db.rollback()
    raise invalid_refresh_token()


class Held(NamedTuple):
    """A session a device proves it holds (by a refresh cookie or an auth token)."""

    client_id: int
    family: str


def owner(secret: str) -> Held | None:
    """The session of a live refresh token, or None."""
    if not secret:
        return None
    row = session().execute(
        sa.select(RefreshToken.client_id, RefreshToken.family).where(
            RefreshToken.token == sha256_hex(secret), RefreshToken.live(utcnow())
        )
    ).first()
    return None if row is None else Held(*row)


def end(families: set[str]) -> None:
    """End these sessions: their refresh tokens and auth tokens stop working at once."""
    if families:
        _revoke_families(families, utcnow())
        session().commit()


def _revoke_families(families: set[str], now: datetime) -> None:
    session().execute(
        sa.update(RefreshToken)
        .where(RefreshToken.family.in_(families), RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def log_out_everywhere(client_id: int) -> None:
    """Refuse every token issued to the client until now, on every device."""
    db = session()
    now = utcnow()
    # iat has whole seconds: round up, so a token issued earlier in this second is refused.
    db.execute(
        sa.update(Client)
        .where(Client.id == client_id)
        .values(tokens_valid_after=math.ceil(now.timestamp()))
        .execution_options(synchronize_session=False)
    )
    db.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.client_id == client_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    db.commit()

"""Sessions: what a login establishes, and refresh-token families (rotate, detect reuse, log out)."""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from . import outbox
from .database import UTCDateTime, session, utcnow
from .errors import invalid_refresh_token, refresh_token_reused
from .models import Client, RefreshToken
from .state import settings
from .sync import listing_ids
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
    refresh_secret: str  # the new refresh cookie
    not_before: int  # the client's tokens_valid_after: the earliest iat its tokens may carry
    at: datetime  # when it happened: the iat of its token, so a later logout covers it
    # Set by link and code logins only:
    created: bool = False  # the client (the lead) did not exist before
    session_id: str | None = None
    favorites: list[str] | None = None
    redirect: str | None = None

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
        )


def sign_in(
    client_id: int, *, brokerage_id: int, email: str, not_before: int, now: datetime,
    created: bool = False, session_id: str | None = None, redirect: str | None = None,
) -> Login:
    """Finish a link, code or message-token login in the caller's transaction, and commit:
    open a refresh family and tell the CRM. `not_before` is the client's tokens_valid_after."""
    favorites = listing_ids(client_id)
    refresh_secret = start_family(client_id, now)
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
        refresh_secret=refresh_secret,
        not_before=not_before,
        at=now,
        created=created,
        session_id=session_id,
        favorites=favorites,
        redirect=redirect,
    )


def start_family(client_id: int, now: datetime) -> str:
    """Open a new refresh family for a login (in the caller's transaction); return its secret."""
    return _issue(client_id, now, family=str(uuid.uuid4()))


def _issue(client_id: int, now: datetime, *, family: str) -> str:
    secret, digest = new_secret()
    session().execute(
        sa.insert(RefreshToken).values(
            client_id=client_id,
            family=family,
            token=digest,
            created_at=now,
            expires_at=now + timedelta(seconds=settings().refresh_token_ttl),
        )
    )
    return secret


def rotate(secret: str) -> Login:
    """Swap a refresh token for a new one of its family; a reused one revokes the family."""
    db = session()
    now = utcnow()
    rotated = db.execute(
        sa.update(RefreshToken)
        .where(
            RefreshToken.token == sha256_hex(secret),
            sa.or_(
                RefreshToken.rotated_at.is_(None),
                RefreshToken.rotated_at > now - REFRESH_REUSE_GRACE,
            ),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(rotated_at=sa.func.coalesce(RefreshToken.rotated_at, sa.literal(now, UTCDateTime())))
        .returning(RefreshToken.client_id, RefreshToken.family)
        .execution_options(synchronize_session=False)
    ).first()
    if rotated is None:
        _refuse(secret, now)
    client = db.execute(
        sa.select(Client.brokerage_id, Client.email, Client.tokens_valid_after).where(
            Client.id == rotated.client_id
        )
    ).one()
    new = _issue(rotated.client_id, now, family=rotated.family)
    db.commit()
    return Login(
        client_id=rotated.client_id,
        brokerage_id=client.brokerage_id,
        email=client.email,
        refresh_secret=new,
        not_before=client.tokens_valid_after,
        at=now,
    )


def _refuse(secret: str, now: datetime):
    db = session()
    token = db.execute(
        sa.select(RefreshToken.family, RefreshToken.rotated_at, RefreshToken.revoked_at).where(
            RefreshToken.token == sha256_hex(secret)
        )
    ).first()
    if token is not None and token.rotated_at is not None and token.revoked_at is None:
        # A rotated token came back: someone kept a copy. End the whole family.
        _revoke_family(token.family, now)
        db.commit()
        raise refresh_token_reused()
    db.rollback()
    raise invalid_refresh_token()


def owner(secret: str) -> sa.Row | None:
    """Return (client_id, family) of a live refresh token, or None."""
    if not secret:
        return None
    return session().execute(
        sa.select(RefreshToken.client_id, RefreshToken.family).where(
            RefreshToken.token == sha256_hex(secret),
            RefreshToken.rotated_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > utcnow(),
        )
    ).first()


def end(secret: str) -> None:
    """Revoke the family of this refresh token (one device's session), if it is live."""
    live = owner(secret)
    if live is not None:
        _revoke_family(live.family, utcnow())
        session().commit()


def _revoke_family(family: str, now: datetime) -> None:
    session().execute(
        sa.update(RefreshToken)
        .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
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

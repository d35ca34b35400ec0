"""Brokerages, their clients, magic links and favourites, with the SQL that changes them."""
from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .database import Base, UTCDateTime, insert, serialize, session, utcnow
from .errors import ApiError, too_many_favorites, unauthorized

DEFAULT_BROKERAGE_ID = 1
PENDING_WINDOW = timedelta(minutes=15)
MAX_CODE_ATTEMPTS = 5  # wrong typed codes before an email's pending links die
# Two tabs refreshing at once, or a retry after a lost answer, present a token
# that was rotated a moment ago: within this window that is not theft.
REFRESH_REUSE_GRACE = timedelta(seconds=30)


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Brokerage(Base):
    __tablename__ = "favsync_brokerages"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    domain: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )

    @classmethod
    def for_host(cls, host: str) -> Brokerage:
        """Return the brokerage whose domain is `host`, else the default one."""
        domain = host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host.lower()
        brokerage = session().scalar(
            sa.select(cls)
            .where(sa.or_(cls.domain == domain, cls.id == DEFAULT_BROKERAGE_ID))
            .order_by(cls.id == DEFAULT_BROKERAGE_ID)  # a domain match sorts first
            .limit(1)
        )
        if brokerage is None:
            raise ApiError(503, "not_configured", "No brokerage is configured; run the migrations.")
        return brokerage


class Client(Base):
    __tablename__ = "favsync_clients"
    __table_args__ = (sa.UniqueConstraint("brokerage_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brokerage_id: Mapped[int] = mapped_column(sa.ForeignKey("favsync_brokerages.id"))
    email: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )
    # Access tokens issued (iat) before this Unix time are refused: log out everywhere.
    tokens_valid_after: Mapped[int] = mapped_column(default=0, server_default="0")

    @classmethod
    def find_or_create(cls, brokerage_id: int, email: str) -> sa.Row:
        """Return (id, tokens_valid_after) of the brokerage's client with this email, creating it if new."""
        statement = insert(cls.__table__).values(
            brokerage_id=brokerage_id, email=email, created_at=utcnow()
        )
        # DO UPDATE (not DO NOTHING) so that RETURNING yields the existing row too.
        statement = statement.on_conflict_do_update(
            index_elements=["brokerage_id", "email"], set_={"email": statement.excluded.email}
        ).returning(cls.__table__.c.id, cls.__table__.c.tokens_valid_after)
        return session().execute(statement).one()

    @classmethod
    def authenticated(
        cls, client_id: int, brokerage_id: int, email: str, issued_at: int
    ) -> int | None:
        """Return the id of the client a valid auth token names, if it exists and was not
        logged out since. (Only the id: every authenticated request pays for this.)"""
        return session().scalar(
            sa.select(cls.id).where(
                cls.id == client_id,
                cls.brokerage_id == brokerage_id,
                cls.email == email,
                cls.tokens_valid_after <= issued_at,
            )
        )


class MagicLink(Base):
    __tablename__ = "favsync_magic_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    brokerage_id: Mapped[int] = mapped_column(sa.ForeignKey("favsync_brokerages.id"))
    email: Mapped[str] = mapped_column(sa.String(255), index=True)
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)  # SHA-256 of the secret
    session_id: Mapped[str | None] = mapped_column(sa.String(36))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("favsync_clients.id"))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )
    code: Mapped[str | None] = mapped_column(sa.String(64))  # keyed hash of the typed code
    next_path: Mapped[str | None] = mapped_column(sa.String(512))
    failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")

    @classmethod
    def issue(
        cls,
        brokerage: Brokerage,
        email: str,
        token_digest: str,
        session_id: str | None,
        *,
        code_digest: str | None = None,
        next_path: str | None = None,
        ttl: int,
        max_pending: int,
    ) -> MagicLink:
        """Store a new pending link, unless the email already has `max_pending` of them."""
        db = session()
        # Count-then-insert races unless every request for this email waits its turn.
        serialize(f"magic-link:{email}")
        now = utcnow()
        pending = db.execute(
            sa.select(cls.expires_at, cls.created_at, cls.failed_attempts).where(
                cls.email == email,
                _pending(cls.__table__, now),  # dead links hold no slot
                cls.created_at > now - PENDING_WINDOW,
            )
        ).all()
        if len(pending) >= max_pending:
            db.rollback()
            frees_at = min(min(row.expires_at, row.created_at + PENDING_WINDOW) for row in pending)
            retry_after = max(1, math.ceil((frees_at - now).total_seconds()))
            raise ApiError(
                429,
                "too_many_pending_links",
                f"This email already has {max_pending} unused sign-in links; "
                "use one of them or try again later.",
                headers={"Retry-After": str(retry_after)},
            )
        link = cls(
            brokerage_id=brokerage.id,
            email=email,
            token=token_digest,
            session_id=session_id,
            code=code_digest,
            next_path=next_path,
            # A new link must not reset the wrong-code count of the email's live ones.
            failed_attempts=max((row.failed_attempts for row in pending), default=0),
            expires_at=now + timedelta(seconds=ttl),
            created_at=now,
        )
        db.add(link)
        db.commit()
        return link

    def withdraw(self) -> None:
        """Delete this link (its email never left), freeing its pending slot."""
        db = session()
        db.execute(sa.delete(MagicLink).where(MagicLink.id == self.id))
        db.commit()


@dataclass(frozen=True)
class Login:
    """What a redeemed magic link establishes."""

    client_id: int
    brokerage_id: int
    email: str
    session_id: str | None
    favorites: list[str]
    redirect: str | None
    refresh_secret: str
    not_before: int  # the earliest iat the client's new tokens may carry
    at: datetime  # when it happened: the iat of its token, so a later logout covers it


def _pending(links, now):
    """Unused, unexpired, and not killed by wrong codes."""
    return sa.and_(
        links.c.used_at.is_(None),
        links.c.expires_at > now,
        links.c.failed_attempts < MAX_CODE_ATTEMPTS,
    )


def redeem_magic_link(token_digest: str, *, refresh_ttl: int) -> Login:
    """Consume a magic link exactly once and log its client in, creating the client if new."""
    links = MagicLink.__table__
    now = utcnow()
    # One conditional UPDATE decides the race: of any number of concurrent
    # redemptions, exactly one sees a row come back.
    consumed = session().execute(
        sa.update(links)
        .where(links.c.token == token_digest, _pending(links, now))
        .values(used_at=now)
        .returning(*_LOGIN_COLUMNS)
    ).first()
    if consumed is None:
        session().rollback()
        raise _why_unredeemable(token_digest, now)
    return _log_in(consumed, now, refresh_ttl)


def redeem_magic_code(email: str, code_digest: str, *, refresh_ttl: int) -> Login:
    """Consume the pending link whose typed code this is; count a wrong code against the email."""
    db = session()
    links = MagicLink.__table__
    # Guesses for one email take turns, so concurrent wrong codes cannot all be
    # checked before any of them is counted.
    serialize(f"magic-link:{email}")
    now = utcnow()
    match = (
        sa.select(links.c.id)
        .where(links.c.email == email, links.c.code == code_digest, _pending(links, now))
        .order_by(links.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    consumed = db.execute(
        sa.update(links)
        .where(links.c.id == match, _pending(links, now))
        .values(used_at=now)
        .returning(*_LOGIN_COLUMNS)
    ).first()
    if consumed is not None:
        return _log_in(consumed, now, refresh_ttl)
    attempts = db.scalars(
        sa.update(links)
        .where(links.c.email == email, _pending(links, now))
        .values(failed_attempts=links.c.failed_attempts + 1)
        .returning(links.c.failed_attempts)
    ).all()
    db.commit()
    if (attempts and max(attempts) >= MAX_CODE_ATTEMPTS) or (not attempts and _has_dead_links(email, now)):
        raise _too_many_attempts()
    # The same answer whether or not the email has pending links.
    raise ApiError(400, "invalid_code", "That code is not right or has expired; check the email.")


def _has_dead_links(email: str, now: datetime) -> bool:
    return session().scalar(
        sa.select(sa.func.count()).where(
            MagicLink.email == email,
            MagicLink.used_at.is_(None),
            MagicLink.expires_at > now,
            MagicLink.failed_attempts >= MAX_CODE_ATTEMPTS,
        )
    ) > 0


def _too_many_attempts() -> ApiError:
    return ApiError(
        410,
        "too_many_attempts",
        "Too many wrong codes: this sign-in email no longer works; request a new one.",
    )


_LOGIN_COLUMNS = [
    MagicLink.__table__.c.id,
    MagicLink.__table__.c.brokerage_id,
    MagicLink.__table__.c.email,
    MagicLink.__table__.c.session_id,
    MagicLink.__table__.c.next_path,
]


def _log_in(consumed: sa.Row, now: datetime, refresh_ttl: int) -> Login:
    db = session()
    links = MagicLink.__table__
    client = Client.find_or_create(consumed.brokerage_id, consumed.email)
    db.execute(sa.update(links).where(links.c.id == consumed.id).values(client_id=client.id))
    favorites = listing_ids(client.id)
    refresh_secret = RefreshToken.issue(client.id, ttl=refresh_ttl, now=now)
    db.commit()
    return Login(
        client_id=client.id,
        brokerage_id=consumed.brokerage_id,
        email=consumed.email,
        session_id=consumed.session_id,
        favorites=favorites,
        redirect=consumed.next_path,
        refresh_secret=refresh_secret,
        not_before=client.tokens_valid_after,
        at=now,
    )


def _why_unredeemable(token_digest: str, now: datetime) -> ApiError:
    link = session().scalar(sa.select(MagicLink).where(MagicLink.token == token_digest))
    if link is None:
        return ApiError(400, "invalid_token", "This sign-in link is not valid.")
    if link.used_at is not None:
        return ApiError(410, "token_used", "This sign-in link was already used; request a new one.")
    if link.failed_attempts >= MAX_CODE_ATTEMPTS and link.expires_at > now:
        return _too_many_attempts()
    return ApiError(410, "token_expired", "This sign-in link has expired; request a new one.")


class RefreshToken(Base):
    """An opaque, rotating refresh token, kept only as a digest; rotations share a family."""

    __tablename__ = "favsync_refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(
        sa.ForeignKey("favsync_clients.id", ondelete="CASCADE"), index=True
    )
    family: Mapped[str] = mapped_column(sa.String(36), index=True)
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)  # SHA-256 of the secret
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @classmethod
    def issue(cls, client_id: int, *, ttl: int, now: datetime, family: str | None = None) -> str:
        """Store a new refresh token (in the caller's transaction); return its secret."""
        secret = secrets.token_urlsafe(32)
        session().execute(
            sa.insert(cls).values(
                client_id=client_id,
                family=family or str(uuid.uuid4()),
                token=sha256_hex(secret),
                created_at=now,
                expires_at=now + timedelta(seconds=ttl),
            )
        )
        return secret


@dataclass(frozen=True)
class Refresh:
    """A rotated refresh token: who it belongs to, and the secret that replaces it."""

    client_id: int
    brokerage_id: int
    email: str
    not_before: int
    refresh_secret: str
    at: datetime


def rotate_refresh_token(secret: str, *, ttl: int) -> Refresh:
    """Swap a refresh token for a new one of its family; a reused one revokes the family."""
    db = session()
    tokens = RefreshToken.__table__
    now = utcnow()
    rotated = db.execute(
        sa.update(tokens)
        .where(
            tokens.c.token == sha256_hex(secret),
            sa.or_(tokens.c.rotated_at.is_(None), tokens.c.rotated_at > now - REFRESH_REUSE_GRACE),
            tokens.c.revoked_at.is_(None),
            tokens.c.expires_at > now,
        )
        .values(rotated_at=sa.func.coalesce(tokens.c.rotated_at, sa.literal(now, UTCDateTime())))
        .returning(tokens.c.client_id, tokens.c.family)
    ).first()
    if rotated is None:
        _refuse_refresh(secret, now)
    client = db.execute(
        sa.select(Client.brokerage_id, Client.email, Client.tokens_valid_after).where(
            Client.id == rotated.client_id
        )
    ).one()
    new_secret = RefreshToken.issue(rotated.client_id, ttl=ttl, now=now, family=rotated.family)
    db.commit()
    return Refresh(
        rotated.client_id,
        client.brokerage_id,
        client.email,
        client.tokens_valid_after,
        new_secret,
        now,
    )


def _refuse_refresh(secret: str, now: datetime):
    db = session()
    tokens = RefreshToken.__table__
    token = db.execute(
        sa.select(tokens.c.family, tokens.c.rotated_at, tokens.c.revoked_at).where(
            tokens.c.token == sha256_hex(secret)
        )
    ).first()
    if token is not None and token.rotated_at is not None and token.revoked_at is None:
        # A rotated token came back: someone kept a copy. End the whole family.
        revoke_refresh_family(token.family, now)
        db.commit()
        raise unauthorized("This session was ended; sign in again.", "refresh_token_reused")
    db.rollback()
    raise unauthorized("The refresh token is not valid; sign in again.", "invalid_refresh_token")


def refresh_token_owner(secret: str) -> sa.Row | None:
    """Return (client_id, family) of a live refresh token, or None."""
    tokens = RefreshToken.__table__
    return session().execute(
        sa.select(tokens.c.client_id, tokens.c.family).where(
            tokens.c.token == sha256_hex(secret),
            tokens.c.rotated_at.is_(None),
            tokens.c.revoked_at.is_(None),
            tokens.c.expires_at > utcnow(),
        )
    ).first()


def end_refresh_session(secret: str) -> None:
    """Revoke the family of this refresh token (one device's session), if it is live."""
    owner = refresh_token_owner(secret) if secret else None
    if owner is not None:
        revoke_refresh_family(owner.family)
        session().commit()


def revoke_refresh_family(family: str, now: datetime | None = None) -> None:
    tokens = RefreshToken.__table__
    session().execute(
        sa.update(tokens)
        .where(tokens.c.family == family, tokens.c.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
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
    )
    tokens = RefreshToken.__table__
    db.execute(
        sa.update(tokens)
        .where(tokens.c.client_id == client_id, tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    db.commit()


class Favorite(Base):
    __tablename__ = "favsync_favorites"
    __table_args__ = (sa.UniqueConstraint("client_id", "listing_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("favsync_clients.id", ondelete="CASCADE"))
    listing_id: Mapped[str] = mapped_column(sa.String(50))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )


def listing_ids(client_id: int) -> list[str]:
    """Return the client's favourite listing ids, oldest first."""
    return list(
        session().scalars(
            sa.select(Favorite.listing_id)
            .where(Favorite.client_id == client_id)
            .order_by(Favorite.id)
        )
    )


def merge_favorites(client_id: int, incoming: list[str], limit: int) -> tuple[list[str], list[str]]:
    """Union `incoming` into the client's favourites; return (all, newly added).

    Rejects the whole merge when the union would hold more than `limit` ids.
    """
    db = session()
    # Two devices syncing one client take turns, so the limit check and the
    # returned list are exact; the statement count does not grow with the list.
    serialize(f"favorites:{client_id}")
    existing = listing_ids(client_id)
    known = set(existing)
    added = [listing_id for listing_id in dict.fromkeys(incoming) if listing_id not in known]
    if len(existing) + len(added) > limit:
        db.rollback()
        raise too_many_favorites(limit, len(existing) + len(added))
    if added:
        now = utcnow()
        db.execute(
            insert(Favorite.__table__)
            .values([{"client_id": client_id, "listing_id": i, "created_at": now} for i in added])
            .on_conflict_do_nothing(index_elements=["client_id", "listing_id"])
        )
    db.commit()
    return existing + added, added


def remove_favorite(client_id: int, listing_id: str) -> tuple[list[str], bool]:
    """Delete one favourite if present; return (what remains, whether it was there)."""
    db = session()
    removed = db.execute(
        sa.delete(Favorite)
        .where(Favorite.client_id == client_id, Favorite.listing_id == listing_id)
        .returning(Favorite.id)
    ).first()
    remaining = listing_ids(client_id)
    db.commit()
    return remaining, removed is not None

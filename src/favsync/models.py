"""Brokerages, their clients, magic links and favourites, with the SQL that changes them."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .database import Base, UTCDateTime, insert, serialize, session, utcnow
from .errors import ApiError

DEFAULT_BROKERAGE_ID = 1
PENDING_WINDOW = timedelta(minutes=15)


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

    @classmethod
    def find_or_create(cls, brokerage_id: int, email: str) -> int:
        """Return the id of the brokerage's client with this email, creating it if new."""
        statement = insert(cls.__table__).values(
            brokerage_id=brokerage_id, email=email, created_at=utcnow()
        )
        # DO UPDATE (not DO NOTHING) so that RETURNING yields the existing row too.
        statement = statement.on_conflict_do_update(
            index_elements=["brokerage_id", "email"], set_={"email": statement.excluded.email}
        ).returning(cls.__table__.c.id)
        return session().execute(statement).scalar_one()

    @classmethod
    def authenticated(cls, client_id: int, brokerage_id: int, email: str) -> Client | None:
        """Return the client a valid auth token names, if it still exists."""
        return session().scalar(
            sa.select(cls).where(
                cls.id == client_id, cls.brokerage_id == brokerage_id, cls.email == email
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

    @classmethod
    def issue(
        cls,
        brokerage: Brokerage,
        email: str,
        token_digest: str,
        session_id: str | None,
        *,
        ttl: int,
        max_pending: int,
    ) -> MagicLink:
        """Store a new pending link, unless the email already has `max_pending` of them."""
        db = session()
        # Count-then-insert races unless every request for this email waits its turn.
        serialize(f"magic-link:{email}")
        now = utcnow()
        pending = db.execute(
            sa.select(cls.expires_at, cls.created_at).where(
                cls.email == email,
                cls.used_at.is_(None),
                cls.expires_at > now,
                cls.created_at > now - PENDING_WINDOW,
            )
        ).all()
        if len(pending) >= max_pending:
            db.rollback()
            frees_at = min(min(expires, created + PENDING_WINDOW) for expires, created in pending)
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


def redeem_magic_link(token_digest: str) -> Login:
    """Consume a magic link exactly once and log its client in, creating the client if new."""
    db = session()
    links = MagicLink.__table__
    now = utcnow()
    # One conditional UPDATE decides the race: of any number of concurrent
    # redemptions, exactly one sees a row come back.
    consumed = db.execute(
        sa.update(links)
        .where(links.c.token == token_digest, links.c.used_at.is_(None), links.c.expires_at > now)
        .values(used_at=now)
        .returning(links.c.id, links.c.brokerage_id, links.c.email, links.c.session_id)
    ).first()
    if consumed is None:
        db.rollback()
        raise _why_unredeemable(token_digest, now)
    client_id = Client.find_or_create(consumed.brokerage_id, consumed.email)
    db.execute(sa.update(links).where(links.c.id == consumed.id).values(client_id=client_id))
    favorites = listing_ids(client_id)
    db.commit()
    return Login(client_id, consumed.brokerage_id, consumed.email, consumed.session_id, favorites)


def _why_unredeemable(token_digest: str, now: datetime) -> ApiError:
    link = session().scalar(sa.select(MagicLink).where(MagicLink.token == token_digest))
    if link is None:
        return ApiError(400, "invalid_token", "This sign-in link is not valid.")
    if link.used_at is not None:
        return ApiError(410, "token_used", "This sign-in link was already used; request a new one.")
    return ApiError(410, "token_expired", "This sign-in link has expired; request a new one.")


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
        raise ApiError(
            422,
            "too_many_favorites",
            f"A client can keep at most {limit} favourites; this sync would make "
            f"{len(existing) + len(added)}.",
        )
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

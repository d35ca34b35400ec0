"""favsync's tables as mapped classes, with the small per-row queries and rules they own."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .database import Base, UTCDateTime, built_once, insert, session, utcnow
from .errors import not_configured

DEFAULT_BROKERAGE_ID = 1
BROKERAGE_CACHE_SECONDS = 30
_brokerage_cache: dict[tuple[str, str], tuple[float, sa.Row]] = {}
MAX_CODE_ATTEMPTS = 5  # wrong typed codes before an email's pending links die


class Brokerage(Base):
    __tablename__ = "favsync_brokerages"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    domain: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )

    @classmethod
    def find(cls, id_or_name: str) -> list[sa.Row]:
        """Return (id, name) of the brokerage with this id, else of those with this name."""
        digits = id_or_name.isascii() and id_or_name.isdigit()
        match = cls.id == int(id_or_name) if digits else cls.name == id_or_name
        return session().execute(sa.select(cls.id, cls.name).where(match).order_by(cls.id)).all()

    @classmethod
    def for_host(cls, host: str) -> sa.Row:
        """Return (id, name) of the brokerage whose domain is `host`, else of the default one.

        Kept for BROKERAGE_CACHE_SECONDS per process: brokerages change rarely (a
        command), and every sign-in request would otherwise pay a round trip.
        """
        key = (str(session().get_bind().url), host)
        cached = _brokerage_cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        brokerage = session().execute(cls._of_domain(cls.domain_of(host), cls.id, cls.name)).first()
        if brokerage is None:
            raise not_configured()
        _brokerage_cache[key] = (time.monotonic() + BROKERAGE_CACHE_SECONDS, brokerage)
        return brokerage

    @staticmethod
    def forget_hosts() -> None:
        """Drop this process's cache of brokerages by host (after a brokerage changed)."""
        _brokerage_cache.clear()

    @classmethod
    def id_of_domain(cls, domain):
        """The brokerage id of a host's `domain` (a value or SQL), as a scalar subquery
        (to fold into another statement)."""
        return cls._of_domain(domain, cls.id).scalar_subquery()

    @staticmethod
    def domain_of(host: str) -> str:
        """The domain a brokerage is found by: the Host header without its port."""
        return host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host.lower()

    @classmethod
    def _of_domain(cls, domain, *columns):
        return (
            sa.select(*columns)
            .where(sa.or_(cls.domain == domain, cls.id == DEFAULT_BROKERAGE_ID))
            .order_by(cls.id == DEFAULT_BROKERAGE_ID)  # a domain match sorts first
            .limit(1)
        )


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
    # The newest favourites version whose tombstones were purged: a device's base
    # version older than this can no longer be merged three ways.
    favorites_horizon: Mapped[int] = mapped_column(default=0, server_default="0")
    # The agent who sent the client its first message; alerts come from them. (No
    # foreign key: SQLite could add one to this table only by rebuilding it, which
    # would cascade to every favourite; agents are never deleted.)
    agent_id: Mapped[int | None] = mapped_column()
    alerts: Mapped[bool] = mapped_column(default=True, server_default=sa.true())  # listing alerts

    @classmethod
    def find_or_create(cls, brokerage_id: int, email: str) -> sa.Row:
        """Return (id, tokens_valid_after, created) of the brokerage's client with this email."""
        now = utcnow()
        statement = insert(cls).values(brokerage_id=brokerage_id, email=email, created_at=now)
        # DO UPDATE (not DO NOTHING) so that RETURNING yields the existing row too.
        statement = statement.on_conflict_do_update(
            index_elements=["brokerage_id", "email"], set_={"email": statement.excluded.email}
        ).returning(cls.id, cls.tokens_valid_after, (cls.created_at == now).label("created"))
        return session().execute(statement).one()

    @classmethod
    def holding(cls) -> sa.ColumnElement[bool]:
        """As SQL: this is the client some credentials name, in the brokerage of their host,
        their token newer than a log out everywhere, and their session not ended.

        Bound by `Credentials.values()`: built once, the statements that use it are reused.
        """
        return sa.and_(
            cls.id == sa.bindparam("client_id"),
            cls.brokerage_id == sa.bindparam("brokerage_id"),
            cls.brokerage_id == Brokerage.id_of_domain(sa.bindparam("domain")),  # the host's tenant
            cls.email == sa.bindparam("email"),
            cls.tokens_valid_after <= sa.bindparam("issued_at"),
            # By parameter, not cls.id: PostgreSQL then checks the session once per
            # statement, not once per favourite a read joins to the client.
            RefreshToken.session_live(
                sa.bindparam("sid"), sa.bindparam("client_id"), sa.bindparam("now", type_=UTCDateTime)
            ),
        )

    @classmethod
    def authenticated(cls, credentials: Credentials) -> int | None:
        """Return the id of the client `credentials` name, if they still hold (one statement)."""
        return session().scalar(_authenticated_query(), credentials.values())


@built_once()
def _authenticated_query() -> sa.Select:
    return sa.select(Client.id).where(Client.holding())


@dataclass(frozen=True)
class Credentials:
    """What a verified auth token says of its holder, and the host it was sent to.

    Whether they still hold is `Client.holding`, a condition on the client's row:
    a read of the client's favourites checks it in the same statement, so that a
    signed-in read costs one round trip.
    """

    client_id: int
    brokerage_id: int
    email: str
    issued_at: int
    session_id: str
    host: str

    def values(self) -> dict:
        """The values `Client.holding()` is bound to, now."""
        return {
            "client_id": self.client_id,
            "brokerage_id": self.brokerage_id,
            "domain": Brokerage.domain_of(self.host),
            "email": self.email,
            "issued_at": self.issued_at,
            "sid": self.session_id,
            "now": utcnow(),
        }


class MagicLink(Base):
    """An emailed sign-in link and code, kept only as digests."""

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
    # The link and the typed code are one-time each: the link opened on a phone,
    # the code typed in the laptop's tab that asked, both sign in.
    code_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # What state a link is in, as SQL: each rule stated once, here.
    @classmethod
    def live(cls, now: datetime):
        """The link is neither used nor expired."""
        return sa.and_(cls.used_at.is_(None), cls.expires_at > now)

    @classmethod
    def pending(cls, now: datetime):
        """The link is live, and not killed by wrong codes: it can still log someone in."""
        return sa.and_(cls.live(now), cls.failed_attempts < MAX_CODE_ATTEMPTS)

    @classmethod
    def code_pending(cls, now: datetime):
        """The typed code is unused, unexpired, and not killed by wrong codes."""
        return sa.and_(cls.code_used_at.is_(None), cls.expires_at > now,
                       cls.failed_attempts < MAX_CODE_ATTEMPTS)

    @classmethod
    def dead(cls, now: datetime):
        """Unexpired, something of it unused, but killed by wrong codes."""
        return sa.and_(cls.expires_at > now, cls.failed_attempts >= MAX_CODE_ATTEMPTS,
                       sa.or_(cls.used_at.is_(None), cls.code_used_at.is_(None)))


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
    # The sign-in that opened the family: no token of it outlives FAVSYNC_REFRESH_ABSOLUTE_TTL.
    family_started_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def live(cls, now: datetime):
        """Neither rotated, revoked nor expired: the one token of its family that refreshes."""
        return sa.and_(cls.rotated_at.is_(None), cls.revoked_at.is_(None), cls.expires_at > now)

    @classmethod
    def session_live(cls, family: str, client_id, now: datetime):
        """The client's session (family) is neither logged out nor expired: its auth tokens work."""
        return sa.exists().where(
            cls.family == family,
            cls.client_id == client_id,
            cls.revoked_at.is_(None),  # logging out revokes every token of the family
            cls.expires_at > now,
        )


class Favorite(Base):
    """A listing a client hearted; once un-hearted, its tombstone (removed_at is set).

    A client's favourites version is the highest `version` of its rows (or its
    favorites_horizon, once tombstones were purged): every change writes the
    rows it changes with the next version.
    """

    __tablename__ = "favsync_favorites"
    __table_args__ = (
        sa.UniqueConstraint("client_id", "listing_id"),
        sa.Index("ix_favsync_favorites_client_id_version", "client_id", "version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("favsync_clients.id", ondelete="CASCADE"))
    listing_id: Mapped[str] = mapped_column(sa.String(50))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )
    # The version that last changed this row: added, re-added or removed it.
    version: Mapped[int] = mapped_column(default=0, server_default="0")
    # The newest version that hearted it: a device whose base is older has not
    # seen that heart, so its removal does not undo it (add wins).
    added_version: Mapped[int] = mapped_column(default=0, server_default="0")
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The versions at which it became a favourite and stopped being one,
    # alternately, space-separated: whether it was one at any version since
    # the client's favorites_horizon.
    history: Mapped[str] = mapped_column(sa.Text, default="0", server_default="0")

    @classmethod
    def live(cls):
        """A favourite, not a tombstone."""
        return cls.removed_at.is_(None)


class SyncSession(Base):
    """The favourites version last returned to a browser session (X-Session-ID) by a sync."""

    __tablename__ = "favsync_sync_sessions"

    client_id: Mapped[int] = mapped_column(
        sa.ForeignKey("favsync_clients.id", ondelete="CASCADE"), primary_key=True
    )
    session_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Listing alerts find a listing's favouriters.
sa.Index("ix_favsync_favorites_listing_id", Favorite.listing_id)


class OutboxMessage(Base):
    """An email or webhook to deliver, committed with the change that causes it."""

    __tablename__ = "favsync_outbox"
    __table_args__ = (sa.Index("ix_favsync_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(36), unique=True)  # Message-ID, webhook-id
    kind: Mapped[str] = mapped_column(sa.String(16))  # "email" or "webhook"
    recipient: Mapped[str] = mapped_column(sa.String(2048))  # an address or a URL
    headers: Mapped[str] = mapped_column(sa.Text)  # JSON; nothing secret
    content: Mapped[str] = mapped_column(sa.Text)  # encrypted: emails carry sign-in secrets
    status: Mapped[str] = mapped_column(sa.String(16), default="queued", server_default="queued")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # never delivered after

    @classmethod
    def due(cls, now: datetime):
        """Waiting for a delivery attempt: queued and due, or held by a lease that ran out."""
        return sa.or_(
            sa.and_(cls.status == "queued", cls.next_attempt_at <= now),
            sa.and_(cls.status == "sending", cls.lease_until < now),
        )


class Agent(Base):
    """A brokerage's agent: sends messages; the default one sends alerts to unassigned clients."""

    __tablename__ = "favsync_agents"
    __table_args__ = (
        # At most one default agent per brokerage.
        sa.Index(
            "ix_favsync_agents_default", "brokerage_id", unique=True,
            sqlite_where=sa.text("is_default"), postgresql_where=sa.text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brokerage_id: Mapped[int] = mapped_column(sa.ForeignKey("favsync_brokerages.id"))
    name: Mapped[str] = mapped_column(sa.String(100))
    email: Mapped[str] = mapped_column(sa.String(255))
    is_default: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )


class ApiKey(Base):
    """A brokerage server's key for the messages API, kept only as a digest."""

    __tablename__ = "favsync_api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    brokerage_id: Mapped[int] = mapped_column(sa.ForeignKey("favsync_brokerages.id"))
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)  # SHA-256 of the key
    label: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Message(Base):
    """A message from an agent to a client (seed 001); its token signs the client in."""

    __tablename__ = "favsync_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    brokerage_id: Mapped[int] = mapped_column(sa.ForeignKey("favsync_brokerages.id"), index=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("favsync_agents.id"))
    client_id: Mapped[int] = mapped_column(
        sa.ForeignKey("favsync_clients.id", ondelete="CASCADE"), index=True
    )
    sender: Mapped[str] = mapped_column(sa.String(16))  # "agent"
    source: Mapped[str] = mapped_column(sa.String(16))  # "api", or "bot" for alerts
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)  # SHA-256 of the UUID
    content: Mapped[dict] = mapped_column(sa.JSON)  # the seed's content object
    schedule_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Its email in the outbox, until the email is purged.
    outbox_uid: Mapped[str | None] = mapped_column(
        sa.ForeignKey("favsync_outbox.uid", ondelete="SET NULL"), unique=True
    )
    delivered: Mapped[str | None] = mapped_column(sa.String(16))  # "sent" or "failed", once known
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )
    clicks: Mapped[int] = mapped_column(default=0, server_default="0")  # sign-ins by its token
    first_clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_id: Mapped[str | None] = mapped_column(sa.String(36))  # of the latest sign-in

    @classmethod
    def status(cls, now: datetime):
        """The seed's delivery status, as SQL."""
        return sa.case(
            (cls.clicks > 0, "clicked"),
            (cls.delivered.is_not(None), cls.delivered),
            (sa.and_(cls.schedule_at.is_not(None), cls.schedule_at > now), "scheduled"),
            else_="queued",
        )


class ListingEvent(Base):
    """A listing's price or status change, fanned out once as alerts (idempotent by event_id)."""

    __tablename__ = "favsync_listing_events"
    __table_args__ = (sa.UniqueConstraint("brokerage_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brokerage_id: Mapped[int] = mapped_column(sa.ForeignKey("favsync_brokerages.id"))
    event_id: Mapped[str] = mapped_column(sa.String(100))
    listing_id: Mapped[str] = mapped_column(sa.String(50))
    type: Mapped[str] = mapped_column(sa.String(32))
    queued: Mapped[int]  # alerts written: the answer repeated to a retry
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )

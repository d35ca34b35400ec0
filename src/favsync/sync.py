"""A client's favourites: versions, tombstones, and merging a device's list into them.

Every change gives the client's favourites a new version. A removed favourite
stays as a tombstone (the row, with `removed_at`) for FAVSYNC_TOMBSTONE_DAYS, so
a device that says which version it last received (its base) is merged three
ways: what it hearted since is added, what it dropped is removed, and what
others removed since stays removed. Without a usable base, its list is
union-merged, as seed 000 does.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from . import outbox
from .database import insert, serialize, session, utcnow
from .errors import too_many_favorites
from .models import Client, Favorite, SyncSession

UNION = "union"
THREE_WAY = "three-way"


@dataclass(frozen=True)
class DeviceList:
    """What a device sends to sync."""

    favorites: list[str]
    removed: Collection[str] = ()  # ids it un-hearted since its base
    base_version: int | None = None  # the version it last received
    session_id: str | None = None  # its X-Session-ID: the base when it sends none


@dataclass(frozen=True)
class Listing:
    """A client's favourites, oldest first, at a version (None: the caller has that version)."""

    version: int
    favorites: list[str] | None


@dataclass(frozen=True)
class Changes:
    """What to apply to the favourites of a version to get those of `version`."""

    version: int
    added: list[str]
    removed: list[str]


@dataclass(frozen=True)
class Merged:
    """The favourites after a sync, how it merged, and which ids it added and removed."""

    version: int
    favorites: list[str]
    merge: str
    added: list[str]
    removed: list[str]


def listing_ids(client_id: int) -> list[str]:
    """Return the client's favourite listing ids, oldest first (tombstones are not favourites)."""
    return current(client_id).favorites


def current(client_id: int, *, unless: Collection[int] = ()) -> Listing:
    """Return the client's favourites and version; skip reading the list if the version is in `unless`."""
    state = _State.read(
        client_id,
        lambda latest: sa.and_(Favorite.live(), latest.not_in(unless) if unless else sa.true()),
    )
    favorites = None if state.version in unless else state.live_ids()
    return Listing(state.version, favorites)


def changes_since(client_id: int, version: int) -> Changes | Listing:
    """Return what changed since `version`, or the whole list if that version is beyond reach."""
    state = _State.read(
        client_id,
        lambda latest: sa.or_(
            Favorite.version > version,
            sa.and_(Favorite.live(), sa.or_(Client.favorites_horizon > version, latest < version)),
        ),
    )
    if not state.reaches(version):
        return Listing(state.version, state.live_ids())
    rows = [row for row in state.rows.values() if row.version > version]
    return Changes(
        state.version,
        added=[row.listing_id for row in rows if row.live],
        removed=[row.listing_id for row in rows if not row.live],
    )


def merge_favorites(client_id: int, device: DeviceList, limit: int) -> Merged:
    """Merge a device's list: three ways from its base version if usable, else the union.

    Rejects the whole merge when it would leave more than `limit` favourites.
    """
    db = session()
    # Two devices syncing one client take turns: versions are handed out one at
    # a time, and the limit check and the returned list are exact.
    serialize(f"favorites:{client_id}")
    state = _State.read(
        client_id,
        lambda _: sa.or_(Favorite.live(), Favorite.listing_id.in_(device.favorites)),
        session_id=device.session_id,
    )
    base = device.base_version if device.base_version is not None else state.session_base
    plan = _Plan(state)
    if base is not None and state.reaches(base):
        merge = THREE_WAY
        plan.merge_three_ways(device, base)
    else:
        merge = UNION
        plan.add_missing(device.favorites)
    favorites = plan.favorites()
    if len(favorites) > limit:
        db.rollback()
        raise too_many_favorites(limit, len(favorites))
    plan.write()
    if device.session_id is not None:
        _remember(client_id, device.session_id, plan.version, plan.now)
    _changed(client_id, added=plan.added, removed=plan.removed)
    db.commit()
    return Merged(plan.version, favorites, merge, plan.added, plan.removed)


def remove_favorite(client_id: int, listing_id: str) -> tuple[Listing, bool]:
    """Remove one favourite if present, keeping its tombstone; return (what remains, whether it was there)."""
    db = session()
    serialize(f"favorites:{client_id}")
    state = _State.read(client_id, lambda _: Favorite.live())
    plan = _Plan(state)
    present = listing_id in state.rows
    if present:
        plan.remove(state.rows[listing_id])
        plan.write()
        _changed(client_id, added=[], removed=[listing_id])
    db.commit()
    return Listing(plan.version, plan.favorites()), present


def forget_session(client_id: int, session_id: str) -> None:
    """Make the next sync of a browser session that just logged in a union (caller commits).

    A seed-000 front end syncs its own list right after logging in, before it
    holds the stored favourites: merged three ways, that would delete them.
    """
    session().execute(
        sa.delete(SyncSession)
        .where(SyncSession.client_id == client_id, SyncSession.session_id == session_id)
        .execution_options(synchronize_session=False)
    )


def purge_tombstones(removed_before: datetime) -> tuple[int, int]:
    """Delete tombstones, and sessions' sync bases, older than `removed_before` (caller commits).

    Returns how many of each. A client's horizon moves past the purged versions
    first, so no base older than them is merged three ways again.
    """
    db = session()
    expired = sa.and_(Favorite.removed_at.is_not(None), Favorite.removed_at < removed_before)
    newest_purged = (
        sa.select(sa.func.max(Favorite.version))
        .where(Favorite.client_id == Client.id, expired)
        .scalar_subquery()
    )
    db.execute(
        sa.update(Client)
        .where(Client.id.in_(sa.select(Favorite.client_id).where(expired)))
        .values(favorites_horizon=_greatest(Client.favorites_horizon, newest_purged))
        .execution_options(synchronize_session=False)
    )
    tombstones = db.execute(sa.delete(Favorite).where(expired))
    sessions = db.execute(sa.delete(SyncSession).where(SyncSession.updated_at < removed_before))
    return tombstones.rowcount, sessions.rowcount


# -- reading ---------------------------------------------------------------------


def _greatest(a, b):
    return sa.case((a > b, a), else_=b)


_ALL_ROWS = aliased(Favorite)  # of the client, inside a query that reads some of its rows


def _latest_version(client_id: int):
    """The client's favourites version, as SQL: its newest row's, or its purge horizon."""
    rows = _ALL_ROWS
    newest = (
        sa.select(sa.func.coalesce(sa.func.max(rows.version), 0))
        .where(rows.client_id == client_id)
        .scalar_subquery()
    )
    return _greatest(newest, Client.favorites_horizon)


@dataclass(frozen=True)
class _State:
    """A client's favourites version, horizon and rows (all or some), read in one statement."""

    client_id: int
    version: int
    horizon: int
    session_base: int | None
    rows: dict[str, sa.Row]  # by listing id, oldest favourite first

    @classmethod
    def read(
        cls, client_id: int, which: Callable[[sa.ColumnElement], sa.ColumnElement],
        *, session_id: str | None = None,
    ) -> _State:
        """Read the rows `which(latest version)` selects, with the client's version and horizon."""
        latest = _latest_version(client_id)
        session_base = (
            sa.select(SyncSession.version)
            .where(SyncSession.client_id == client_id, SyncSession.session_id == session_id)
            .scalar_subquery()
            if session_id is not None
            else sa.null()
        )
        found = session().execute(
            sa.select(
                latest.label("latest"),
                Client.favorites_horizon,
                session_base.label("session_base"),
                Favorite.listing_id,
                Favorite.id,
                Favorite.created_at,
                Favorite.version,
                Favorite.added_version,
                Favorite.live().label("live"),
                Favorite.history,
            )
            .select_from(Client)
            .outerjoin(Favorite, sa.and_(Favorite.client_id == Client.id, which(latest)))
            .where(Client.id == client_id)
            .order_by(Favorite.added_version, Favorite.id)
        ).all()
        first = found[0] if found else None
        return cls(
            client_id=client_id,
            version=first.latest if first else 0,
            horizon=first.favorites_horizon if first else 0,
            session_base=first.session_base if first else None,
            rows={row.listing_id: row for row in found if row.listing_id is not None},
        )

    def reaches(self, version: int) -> bool:
        """Whether every change after `version` is still known (its tombstones kept)."""
        return self.horizon <= version <= self.version

    def live_ids(self) -> list[str]:
        return [listing_id for listing_id, row in self.rows.items() if row.live]


# -- changing --------------------------------------------------------------------


def present_at(history: str, version: int) -> bool:
    """Whether a row with this history was a favourite at `version`."""
    changes = sum(1 for toggle in history.split() if int(toggle) <= version)
    return changes % 2 == 1


def toggled(history: str, version: int, horizon: int) -> str:
    """The history with one more change of state, at `version`.

    Changes up to the horizon are dropped in pairs: no base older than the
    horizon is ever asked about, and pairs do not change the state after it.
    """
    toggles = [int(toggle) for toggle in history.split()]
    old = [toggle for toggle in toggles if toggle <= horizon]
    kept = old[-1:] if len(old) % 2 else []
    return " ".join(str(toggle) for toggle in [*kept, *(t for t in toggles if t > horizon), version])


class _Plan:
    """The rows one sync or removal changes, all written at the next version, in one statement."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.now = utcnow()
        self.next_version = state.version + 1
        self.values: dict[str, dict] = {}  # by listing id: the row to upsert
        self.added: list[str] = []  # ids that became favourites
        self.removed: list[str] = []  # ids that stopped being ones

    @property
    def version(self) -> int:
        return self.next_version if self.values else self.state.version

    def add_missing(self, incoming: list[str]) -> None:
        """Union: add every id the client does not hold."""
        for listing_id in dict.fromkeys(incoming):
            row = self.state.rows.get(listing_id)
            if row is None or not row.live:
                self.add(listing_id)

    def merge_three_ways(self, device: DeviceList, base: int) -> None:
        """Apply what the device changed since `base`, keeping what others changed since."""
        incoming = dict.fromkeys(device.favorites)
        hearted_again = set(device.removed)
        for listing_id in incoming:
            row = self.state.rows.get(listing_id)
            # Hearted on the device since its base (or un-hearted and hearted again):
            # add, whatever other devices did meanwhile. Held at the base: nothing
            # to do, even if another device removed it since (no resurrection).
            if listing_id in hearted_again or row is None or not present_at(row.history, base):
                self.add(listing_id)
        for row in list(self.state.rows.values()):
            # Dropped by the device: remove, unless hearted after its base (add wins).
            if row.live and row.listing_id not in incoming and row.added_version <= base:
                self.remove(row)

    def add(self, listing_id: str) -> None:
        row = self.state.rows.get(listing_id)
        if row is not None and row.live:
            # Hearted again while held: only newer removals may undo it.
            history, created_at = row.history, row.created_at
        else:
            history = (
                toggled(row.history, self.next_version, self.state.horizon)
                if row is not None
                else str(self.next_version)
            )
            created_at = self.now
            self.added.append(listing_id)
        self._change(listing_id, created_at, self.next_version, None, history)

    def remove(self, row: sa.Row) -> None:
        history = toggled(row.history, self.next_version, self.state.horizon)
        self._change(row.listing_id, row.created_at, row.added_version, self.now, history)
        self.removed.append(row.listing_id)

    def _change(self, listing_id, created_at, added_version, removed_at, history) -> None:
        self.values[listing_id] = {
            "client_id": self.state.client_id,
            "listing_id": listing_id,
            "created_at": created_at,
            "version": self.next_version,
            "added_version": added_version,
            "removed_at": removed_at,
            "history": history,
        }

    def favorites(self) -> list[str]:
        """The favourites after the change, in the order the database lists them."""
        order = {
            listing_id: (row.added_version, row.id, 0)
            for listing_id, row in self.state.rows.items()
            if row.live and listing_id not in self.values
        }
        for index, (listing_id, values) in enumerate(self.values.items()):
            if values["removed_at"] is None:
                row = self.state.rows.get(listing_id)
                # A new row's id comes after every existing one, in insertion order.
                order[listing_id] = (values["added_version"], row.id if row else float("inf"), index)
        return sorted(order, key=order.__getitem__)

    def write(self) -> None:
        if not self.values:
            return
        statement = insert(Favorite).values(list(self.values.values()))
        session().execute(
            statement.on_conflict_do_update(
                index_elements=["client_id", "listing_id"],
                set_={
                    name: statement.excluded[name]
                    for name in ("created_at", "version", "added_version", "removed_at", "history")
                },
            )
        )


def _remember(client_id: int, session_id: str, version: int, now: datetime) -> None:
    """Keep the version a sync answered a browser session: its base next time."""
    statement = insert(SyncSession).values(
        client_id=client_id, session_id=session_id, version=version, updated_at=now
    )
    session().execute(
        statement.on_conflict_do_update(
            index_elements=["client_id", "session_id"],
            set_={"version": statement.excluded.version, "updated_at": statement.excluded.updated_at},
        )
    )


def _changed(client_id: int, *, added: list[str], removed: list[str]) -> None:
    """Tell the CRM, in the transaction that made the change (nothing when nothing changed)."""
    if added or removed:
        outbox.add_event(
            "favorites.changed", {"client_id": client_id, "added": added, "removed": removed}
        )

"""A client's favourites: versions, tombstones, and merging a device's list into them.

Every change gives the client's favourites a new version. A removed favourite
stays as a tombstone (the row, with `removed_at`) for FAVSYNC_TOMBSTONE_DAYS, so
a device that says which version it last received (its base) is merged three
ways: what it hearted since is added, what it dropped is removed, and what
others removed since stays removed. Without a usable base, its list is
union-merged, as seed 000 does.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from . import outbox
from .database import (
    UTCDateTime, again_if_disconnected, built_once, commit, commits_alone, dialect_name,
    in_bound_list, insert, json_elements, read, serialize, session, utcnow, write, write_alone,
)
from .errors import too_many_favorites, token_no_longer_valid
from .models import Client, Credentials, Favorite, SyncSession

UNION = "union"
THREE_WAY = "three-way"
SESSION_KEPT_FRESH = timedelta(days=1)

# Whose favourites: a client id the caller vouches for (it just signed them in), or
# a request's credentials, checked by the statement that reads the favourites.
Whose = int | Credentials


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


def current(client: Whose, *, unless: Collection[int] = ()) -> Listing:
    """Return the client's favourites and version; skip reading the list if the version is in `unless`."""
    values = {"unless": list(unless)} if unless else {}
    # (latest, listing_id) rows, by position: every read of a list, of up to 500 rows.
    rows = _rows(client, _live_unless if unless else _live, _LISTING, named=False, **values)
    version = rows[0][0] if rows else 0
    if version in unless:
        return Listing(version, None)
    return Listing(version, [listing_id for _, listing_id in rows if listing_id is not None])


def changes_since(client: Whose, version: int) -> Changes | Listing:
    """Return what changed since `version`, or the whole list if that version is beyond reach."""
    state = _State.read(client, _changed_since, since=version)
    if not state.reaches(version):
        return Listing(state.version, state.live_ids())
    rows = [row for row in state.rows.values() if row.version > version]
    return Changes(
        state.version,
        added=[row.listing_id for row in rows if row.live],
        removed=[row.listing_id for row in rows if not row.live],
    )


def merge_favorites(client: Whose, device: DeviceList, limit: int) -> Merged:
    """Merge a device's list: three ways from its base version if usable, else the union.

    Rejects the whole merge when it would leave more than `limit` favourites.
    """
    held = _held_already(client, device, limit)
    if held is not None:
        return Merged(held.version, held.favorites, UNION, [], [])

    first_read: _State | None = None

    def planned(state: _State) -> _Plan:
        nonlocal first_read
        first_read = first_read or state
        plan = _Plan(state, browser_session=device.session_id)
        # The session's base as first read: planned again under the lock, the base read
        # there may be this sync's own, committed with its change whose answer was lost
        # (then overtaken by another): a version the device never received.
        base = device.base_version if device.base_version is not None else first_read.session_base
        if base is not None and state.reaches(base):
            plan.merge = THREE_WAY
            plan.merge_three_ways(device, base)
        else:
            plan.add_missing(device.favorites)
        if len(plan.favorites) > limit:
            raise too_many_favorites(limit, len(plan.favorites))
        return plan

    plan = _change(
        lambda: _State.read(
            client, _live_or_sent, sent=device.favorites, browser_session=device.session_id,
            shape=_PLANNING,
        ),
        planned,
        # An event for the CRM goes in the change's transaction, written after the change.
        alone=not outbox.sends_webhooks(),
    )
    client_id = plan.state.client_id
    remember = device.session_id is not None and not plan.base_kept and (
        plan.state.session_base != plan.version
        # A base is purged after FAVSYNC_TOMBSTONE_DAYS unwritten: a session that keeps
        # syncing without changes writes it again now and then, not on every sync.
        or plan.state.session_seen is None
        or plan.state.session_seen < plan.now - SESSION_KEPT_FRESH
    )
    if remember:
        _remember(client_id, device.session_id, plan.version, plan.now)
    if plan.changes or remember:  # a sync that changes nothing only read
        _changed(client_id, added=plan.added, removed=plan.removed)
        commit()
    return Merged(plan.version, plan.favorites, plan.merge, plan.added, plan.removed)


def _held_already(client: Whose, device: DeviceList, limit: int) -> Listing | None:
    """The client's favourites, if a union merge of `device` would change nothing.

    The sync a page sends on every load, of ids the client holds: answered from
    the list read (the one GET makes) instead of the rows a merge plans from,
    which cost the database and the request several times more. A device that
    names a base (or a session, which may hold one) may remove ids: it plans.
    """
    if device.base_version is not None or device.session_id is not None:
        return None
    listing = current(client)
    if len(listing.favorites) > limit or not set(device.favorites).issubset(listing.favorites):
        return None  # the merge adds (or refuses), planned from a read of its own
    return listing


def remove_favorite(client: Whose, listing_id: str) -> tuple[Listing, bool]:
    """Remove one favourite if present, keeping its tombstone; return (what remains, whether it was there)."""

    def planned(state: _State) -> _Plan:
        plan = _Plan(state)
        if listing_id in state.rows:
            plan.remove(state.rows[listing_id])
        return plan

    plan = _change(lambda: _State.read(client, _live, shape=_PLANNING), planned,
                   alone=not outbox.sends_webhooks())
    present = bool(plan.removed)
    if present:
        _changed(plan.state.client_id, added=[], removed=[listing_id])
        commit()
    return Listing(plan.version, plan.favorites), present


def _change(read_state: Callable[[], _State], plan_for: Callable[[_State], _Plan], *,
            alone: bool) -> _Plan:
    """Plan a change from a read; if it changes anything, write it under the client's lock.

    The read runs alone, outside a transaction: a sync that changes nothing costs
    one round trip. Two devices syncing one client take turns at the lock, so
    versions are handed out one at a time; the write happens only if no one
    changed the favourites between the read and the lock, else the change is
    planned again from a read under the lock, where no one can.

    When the change is `alone` in its transaction (nothing else is to be written
    after it) and the database allows, it is committed here: its BEGIN, lock, write
    (with the browser session's base) and COMMIT in one round trip. Otherwise it is
    in the session's transaction, for the caller to commit (`commit()`).
    """
    plan = plan_for(read_state())
    if not plan.changes:
        return plan
    lock = f"favorites:{plan.state.client_id}"
    alone = alone and commits_alone()
    # The lock and the write are the transaction's first statements: on a connection
    # the database dropped since (a restart), nothing is lost by sending them again.
    # Nor doubled: if the answer lost was a COMMIT's, the version has moved, the write
    # sent again writes nothing, and under the lock the change is found written.
    if not again_if_disconnected(
        lambda: plan.write(if_still=plan.state.version, lock=lock, alone=alone), session().rollback
    ):
        if alone:  # that transaction is over: this one takes the lock
            serialize(lock)
        state = read_state()
        if alone and plan.landed_in(state):
            return plan  # it was this change: its COMMIT went through, only the answer was lost
        plan = plan_for(state)
        plan.write()
    return plan


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
    """Delete tombstones older than `removed_before`, committing the session's transaction
    then; then sessions' sync bases as old (caller commits).

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
        .values(favorites_horizon=_greatest(Client.favorites_horizon, newest_purged, dialect_name()))
        .execution_options(synchronize_session=False)
    )
    tombstones = db.execute(sa.delete(Favorite).where(expired)).rowcount
    # Two transactions: a sync writes a session's base and favourites in one, the base
    # first when alone in its round trip, after them otherwise; a purge holding rows of
    # both at once could deadlock with one or the other.
    db.commit()
    sessions = db.execute(sa.delete(SyncSession).where(SyncSession.updated_at < removed_before))
    return tombstones, sessions.rowcount


# -- reading ---------------------------------------------------------------------


def _greatest(a, b, dialect: str):
    # CASE would name `a` twice: PostgreSQL would plan a subquery twice.
    return sa.func.greatest(a, b, type_=a.type) if dialect == "postgresql" else sa.case((a > b, a), else_=b)


_ALL_ROWS = aliased(Favorite)  # of the client, inside a query that reads some of its rows


def _latest_version(client_id, dialect: str):
    """The client's favourites version, as SQL: its newest row's, or its purge horizon.

    `client_id` is a value or a bind parameter, never the outer row's column: so
    PostgreSQL runs the subquery once, not once per row the statement returns.
    """
    rows = _ALL_ROWS
    newest = (
        sa.select(sa.func.coalesce(sa.func.max(rows.version), 0))
        .where(rows.client_id == client_id)
        .scalar_subquery()
    )
    return _greatest(newest, Client.favorites_horizon, dialect)


# Which of a client's rows a read needs, given its latest version (bound by name).
def _live(latest, dialect):
    return Favorite.live()


def _live_unless(latest, dialect):  # none at all if the version is one of `unless`
    return sa.and_(Favorite.live(), sa.not_(in_bound_list(latest, "unless", dialect)))


def _changed_since(latest, dialect):  # what changed since `since`; all live ones if out of reach
    since = sa.bindparam("since")
    return sa.or_(
        Favorite.version > since,
        sa.and_(Favorite.live(), sa.or_(Client.favorites_horizon > since, latest < since)),
    )


def _live_or_sent(latest, dialect):  # and the rows, tombstones too, of the ids a device `sent`
    return sa.or_(Favorite.live(), in_bound_list(Favorite.listing_id, "sent", dialect))


# How much of each row a read returns: a listing, its id; a state, also its version and
# whether it is live (and the client's horizon and browser session); a change, its history too.
_LISTING, _STATE, _PLANNING = range(3)


def _rows(
    client: Whose, which: Callable, shape: int, *, browser_session: str | None = None,
    named: bool = True, **values,
) -> list:
    """The rows `which` selects (bound to `values`), each with the client's version;
    named=False: read by position (see `database.read`).

    Given credentials, the same statement checks them: raise 401 when they no longer hold.
    """
    checked = isinstance(client, Credentials)
    if checked:
        values.update(client.values())
    else:
        values["client_id"] = client
    if browser_session is not None:
        values["browser_session"] = browser_session
    query = _read_query(which, checked, browser_session is not None, shape, dialect_name())
    found = read(query, values, named=named)
    if not found and checked:
        raise token_no_longer_valid()
    return found


@built_once()
def _read_query(
    which: Callable, checked: bool, browser_session: bool, shape: int, dialect: str
) -> sa.Select:
    """A read of a client's version and the rows `which` selects, as much of them as
    `shape` says, built once.

    Building and hashing a statement costs a request more than the round trip it
    makes; each request only binds its values. Every column less is less for the
    database to send and for the request to take apart.
    """
    client_id = sa.bindparam("client_id")
    latest = _latest_version(client_id, dialect)

    def of_session(column):
        return (
            sa.select(column)
            .where(SyncSession.client_id == client_id,
                   SyncSession.session_id == sa.bindparam("browser_session"))
            .scalar_subquery()
            if browser_session
            else sa.null()
        )

    return (
        sa.select(
            latest.label("latest"),
            Favorite.listing_id,
            *((Client.favorites_horizon,
               of_session(SyncSession.version).label("session_base"),
               of_session(SyncSession.updated_at).label("session_seen"),
               Favorite.version,
               Favorite.live().label("live")) if shape >= _STATE else ()),
            *((Favorite.id, Favorite.added_version, Favorite.history) if shape == _PLANNING else ()),
        )
        .select_from(Client)
        .outerjoin(Favorite, sa.and_(Favorite.client_id == Client.id, which(latest, dialect)))
        .where(Client.holding() if checked else Client.id == client_id)
        .order_by(Favorite.added_version, Favorite.id)
    )


@dataclass(frozen=True)
class _State:
    """A client's favourites version, horizon and rows (all or some), read in one statement."""

    client_id: int
    version: int
    horizon: int
    session_base: int | None
    session_seen: datetime | None  # when that base was last written
    rows: dict[str, sa.Row]  # by listing id, oldest favourite first

    @classmethod
    def read(
        cls, client: Whose, which: Callable, *, browser_session: str | None = None,
        shape: int = _STATE, **values,
    ) -> _State:
        """Read the rows `which` selects (bound to `values`), with the client's version and
        horizon, and the base version of the browser session, if named (see `_rows`)."""
        found = _rows(client, which, shape, browser_session=browser_session, **values)
        first = found[0] if found else None
        return cls(
            client_id=client.client_id if isinstance(client, Credentials) else client,
            version=first.latest if first else 0,
            horizon=first.favorites_horizon if first else 0,
            session_base=first.session_base if first else None,
            session_seen=first.session_seen if first else None,
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


class _Change(NamedTuple):
    """One row as a change writes it (at the change's version). A tuple: a sync makes
    one per id it adds, up to 500."""

    added_version: int
    removed: bool
    history: str


class _Plan:
    """The rows one sync or removal changes, all written at the next version, in one statement."""

    def __init__(self, state: _State, *, browser_session: str | None = None) -> None:
        self.state = state
        self.browser_session = browser_session  # the X-Session-ID whose base the change is
        self.base_kept = False  # whether that base was written with the change
        self.now = utcnow()
        self.next_version = state.version + 1
        self.merge = UNION
        self.changes: dict[str, _Change] = {}  # by listing id
        self.added: list[str] = []  # ids that became favourites
        self.removed: list[str] = []  # ids that stopped being ones

    @property
    def version(self) -> int:
        return self.next_version if self.changes else self.state.version

    def add_missing(self, incoming: list[str]) -> None:
        """Union: add every id the client does not hold."""
        rows = self.state.rows
        for listing_id in dict.fromkeys(incoming):
            row = rows.get(listing_id)
            if row is None or not row.live:
                self._add(listing_id, row)  # looked up once: a first sync sends 500 ids

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
        self._add(listing_id, self.state.rows.get(listing_id))

    def _add(self, listing_id: str, row: sa.Row | None) -> None:
        if row is None:
            self.changes[listing_id] = self._first_added
            self.added.append(listing_id)
            return
        if row.live:
            # Hearted again while held: only newer removals may undo it.
            history = row.history
        else:
            history = toggled(row.history, self.next_version, self.state.horizon)
            self.added.append(listing_id)
        self.changes[listing_id] = _Change(self.next_version, False, history)

    @functools.cached_property
    def _first_added(self) -> _Change:
        """The change of every id the client never held: a row added at the next version.
        One (immutable) value shared by all of them."""
        return _Change(self.next_version, False, str(self.next_version))

    def remove(self, row: sa.Row) -> None:
        history = toggled(row.history, self.next_version, self.state.horizon)
        self.changes[row.listing_id] = _Change(row.added_version, True, history)
        self.removed.append(row.listing_id)

    def landed_in(self, state: _State) -> bool:
        """Whether `state` (read under the lock) is this plan's change, written: the
        client's version is the plan's, and each row it changed is as it wrote it (a
        removed row is no longer live, and not read)."""
        if state.version != self.next_version:
            return False
        for listing_id, change in self.changes.items():
            row = state.rows.get(listing_id)
            if change.removed:
                if row is not None and (row.live or row.version != self.next_version):
                    return False
            elif (row is None or not row.live or row.version != self.next_version
                  or (row.added_version, row.history) != (change.added_version, change.history)):
                return False
        return True

    @functools.cached_property
    def favorites(self) -> list[str]:
        """The favourites after the change, in the order the database lists them (ask once
        the plan is complete)."""
        rows, changes = self.state.rows, self.changes
        # The rows were read in that order (by the version that added them, then id).
        kept = [listing_id for listing_id, row in rows.items() if row.live and listing_id not in changes]
        # Whatever a change adds, it adds at the next version, after every kept row:
        # existing rows by their id, then new rows, whose ids follow in insertion order.
        added = [listing_id for listing_id, change in changes.items() if not change.removed]
        existing = sorted((listing_id for listing_id in added if listing_id in rows),
                          key=lambda listing_id: rows[listing_id].id)
        return [*kept, *existing, *(listing_id for listing_id in added if listing_id not in rows)]

    def write(self, *, if_still: int | None = None, lock: str | None = None, alone: bool = False) -> bool:
        """Upsert the changed rows in one statement, first taking `lock` if given; given
        `if_still`, only while the client's version is still that one; if `alone` (with
        `if_still`), in a transaction of its own, committed (`write_alone`), with the
        browser session's base. Return whether the rows were written."""
        if not self.changes:
            return True
        rows = [(listing_id, *change) for listing_id, change in self.changes.items()]
        values = {"of_client": self.state.client_id, "at_version": self.next_version,
                  "changed_at": self.now}
        if if_still is not None:
            values["if_still"] = if_still
        dialect = dialect_name()
        if dialect == "postgresql":
            statement = _upsert_from_json(if_still is not None)
            values["changed_rows"] = rows
        else:
            statement = _upsert(_values_of(rows), if_still is not None, dialect)
        # Core, on the session's connection: the ORM would take an INSERT with
        # parameters for a bulk insert of objects.
        if alone:
            return self._write_alone(statement, values, lock)
        return write(statement, values, lock=lock) > 0

    def _write_alone(self, statement, values: dict, lock: str) -> bool:
        # The browser session's base goes in the same round trip, before the rows and
        # guarded as they are: under the lock the guard answers both the same, so the
        # base is this change's version only if the change is written.
        base = ()
        if self.browser_session is not None:
            # The rows' values name the client, version, time and guard it takes.
            base = ((_keeping_base(guarded=True, dialect=dialect_name()),
                     {**values, "browser_session": self.browser_session}),)
        written = write_alone(statement, values, lock=lock, first=base) > 0
        self.base_kept = written and bool(base)
        return written


# A changed row, as a change writes it (its client, version and removal time are the change's).
_ROW = {
    "listing_id": sa.String,
    "added_version": sa.Integer,
    "removed": sa.Boolean,
    "history": sa.String,
}


@built_once()
def _upsert_from_json(conditional: bool):
    """PostgreSQL's upsert of the changed rows, sent as one JSON array of rows (a
    JsonList): its statement is built and compiled once, however many rows a change has."""
    value = json_elements("changed_rows").table_valued("value").alias("changed").c.value
    rows = sa.select(*(
        sa.cast(value.op("->>")(sa.literal_column(str(position))), type_).label(name)
        for position, (name, type_) in enumerate(_ROW.items())
    )).subquery("incoming")
    return _upsert(rows, conditional, "postgresql")


def _values_of(rows: list[tuple]) -> sa.Subquery:
    """The changed rows as a VALUES list (SQLite), nested in a SELECT: pysqlite counts
    an INSERT's rows only when the statement starts with INSERT (not WITH)."""
    incoming = sa.values(*(sa.column(name, type_) for name, type_ in _ROW.items()), name="incoming")
    return sa.select(incoming.data(rows).cte("incoming", nesting=True)).subquery("rows")


def _still_at_read(client_id, dialect: str):
    """As SQL: the client's version is still the bound `if_still`, the one the change was
    planned from (the guard of a change's writes)."""
    return _latest_version(client_id, dialect) == sa.bindparam("if_still")


def _upsert(rows, conditional: bool, dialect: str):
    """Insert or update `rows` (columns as in _ROW) at the bound version; if `conditional`,
    only while the client's version is the bound `if_still`."""
    client_id = sa.bindparam("of_client")
    unchanged = _still_at_read(client_id, dialect) if conditional else sa.true()
    statement = insert(Favorite, dialect).from_select(
        ["client_id", "listing_id", "created_at", "version", "added_version", "removed_at", "history"],
        sa.select(
            Client.id,
            rows.c.listing_id,
            sa.bindparam("changed_at", type_=UTCDateTime),
            sa.bindparam("at_version", type_=sa.Integer),
            rows.c.added_version,
            sa.case((rows.c.removed, sa.bindparam("changed_at", type_=UTCDateTime))),
            rows.c.history,
        )
        .select_from(rows.join(Client, Client.id == client_id))
        .where(unchanged),
    )
    return statement.on_conflict_do_update(
        index_elements=["client_id", "listing_id"],
        set_={
            # A favourite's time is when it became one: new with a tombstone hearted
            # again, kept by a removal or by hearting one held (so never read to be kept).
            "created_at": sa.case(
                (sa.and_(Favorite.removed_at.is_not(None), statement.excluded.removed_at.is_(None)),
                 statement.excluded.created_at),
                else_=Favorite.created_at,
            ),
            **{
                name: statement.excluded[name]
                for name in ("version", "added_version", "removed_at", "history")
            },
        },
    )


def _remember(client_id: int, session_id: str, version: int, now: datetime) -> None:
    """Keep the version a sync answered a browser session: its base next time."""
    session().execute(
        _keeping_base(guarded=False, dialect=dialect_name()),
        {"of_client": client_id, "browser_session": session_id, "at_version": version,
         "changed_at": now},
    )


@built_once()
def _keeping_base(*, guarded: bool, dialect: str):
    """Write the bound `at_version` as the base of a client's browser session; if
    `guarded`, only while the client's version is still the bound `if_still`.

    Never moves back: a sync that changed nothing writes it outside the lock, and
    may race a newer one.
    """
    client_id = sa.bindparam("of_client")
    columns = {
        "client_id": client_id,
        "session_id": sa.bindparam("browser_session", type_=sa.String),
        "version": sa.bindparam("at_version", type_=sa.Integer),
        "updated_at": sa.bindparam("changed_at", type_=UTCDateTime),
    }
    statement = insert(SyncSession, dialect)
    if guarded:
        statement = statement.from_select(
            list(columns),
            sa.select(*columns.values()).select_from(Client).where(
                Client.id == client_id, _still_at_read(client_id, dialect)
            ),
        )
    else:
        statement = statement.values(columns)
    return statement.on_conflict_do_update(
        index_elements=["client_id", "session_id"],
        set_={"version": statement.excluded.version, "updated_at": statement.excluded.updated_at},
        where=SyncSession.version <= statement.excluded.version,
    )


def _changed(client_id: int, *, added: list[str], removed: list[str]) -> None:
    """Tell the CRM, in the transaction that made the change (nothing when nothing changed)."""
    if added or removed:
        outbox.add_event(
            "favorites.changed", {"client_id": client_id, "added": added, "removed": removed}
        )

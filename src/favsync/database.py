"""favsync's declarative base, its engine and session, and the few SQL paths that differ by dialect."""
from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session

from .state import state

log = logging.getLogger("favsync")
T = TypeVar("T")

TABLE_PREFIX = "favsync_"
MIGRATIONS_DIRECTORY = str(Path(__file__).parent / "migrations")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """favsync's own metadata, so its tables can live in a host's database."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("favsync stores only timezone-aware datetimes")
            value = value.astimezone(timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def session() -> Session:
    """The SQLAlchemy session favsync uses in this app (its own, or the host's)."""
    return state().db.session


def dialect_name() -> str:
    return state().dialect


def in_transaction() -> bool:
    """Whether this request's session has a transaction open."""
    scoped = session()
    # A request that only reads never makes a Session: has() asks without making one.
    return scoped.registry.has() and scoped().in_transaction()


def commit() -> None:
    """Commit the request's session, if it made one (a write committed alone made none)."""
    scoped = session()
    if scoped.registry.has():
        scoped.commit()


def read(statement, values: dict | None = None, *, named: bool = True) -> list:
    """Run a read, as cheaply as the database allows, and survive a restart of it.

    Its rows are SQLAlchemy's or named tuples: read them by column name or position.
    named=False: on psycopg, the driver's plain tuples, read by position. For a
    read of many rows of few columns: naming each row cost the favourites list more
    than the rest of favsync's work on its rows (90,000 instructions for 50 rows).

    When this request's session has no transaction, the read runs alone, outside
    the session, on a connection in autocommit: no BEGIN and ROLLBACK round trips
    around it, none of the session's bookkeeping, and when the connection turns
    out dead (the database restarted since it was opened) it runs once more on a
    new one. On favsync's own PostgreSQL database that connection is the thread's
    own (`ThreadReads`); on a site's, one from its pool. Inside a transaction it
    runs there, and a lost connection is the caller's 503: what the transaction
    did before is gone.
    """
    if in_transaction():
        return session().execute(statement, values).all()

    current = state()
    engine = current.engine
    if engine.dialect.driver == "psycopg" and not _watched(engine):
        reads = current.reads  # None on a site's `db`: its pool's connections
        return again_if_disconnected(lambda: _read_on_psycopg(engine, reads, statement, values, named))
    reading = reading_engine(engine)

    def alone() -> list[sa.Row]:
        with reading.connect() as connection:
            return connection.execute(statement, values).all()

    return again_if_disconnected(alone)


def write(statement, values: dict, *, lock: str | None = None) -> int:
    """Run a write in the session's transaction, after taking the lock named `lock`
    if given (as `serialize` does); return how many rows it wrote.

    On psycopg, as SQL compiled once with its parameters passed as they are:
    SQLAlchemy would hash the statement to find it in its cache and convert its
    parameters. With a lock, the lock and the write go to PostgreSQL in one
    pipeline: one round trip, not two (psycopg waits for the BEGIN before them).
    When the engine has statement listeners they go through the Connection, one
    by one, so that the listeners see them.
    """
    engine = state().engine
    psycopg = engine.dialect.driver == "psycopg"
    if lock is not None and psycopg and not _watched(engine) and _pipelines(engine.dialect.loaded_dbapi):
        connection = session().connection()
        compiled = _compiled(statement, connection.dialect)
        return _locked_write_in_one_round_trip(connection, lock, compiled.sql, compiled.params(values))
    if lock is not None:
        serialize(lock)
    connection = session().connection()
    if not psycopg:
        return connection.execute(statement, values, execution_options=_ROWCOUNT).rowcount
    compiled = _compiled(statement, connection.dialect)
    return connection.exec_driver_sql(
        compiled.sql, compiled.params(values), execution_options=_ROWCOUNT
    ).rowcount


_ROWCOUNT = {"preserve_rowcount": True}  # SQLAlchemy keeps an INSERT's only if asked
_LOCK = "SELECT pg_advisory_xact_lock(%s)"


def _locked_write_in_one_round_trip(connection: sa.Connection, lock: str, sql: str, params) -> int:
    """Take the lock and run the write in one psycopg pipeline on the session's connection.

    A driver error is raised as SQLAlchemy's Connection would raise it: on a
    disconnect the connection is invalidated, and so is every other one the pool
    opened, so the caller may begin again on a live one.
    """
    driver = connection.connection.driver_connection
    try:
        with driver.pipeline():
            driver.execute(_LOCK, (_lock_id(lock),))
            written = driver.execute(sql, params)
    except connection.dialect.loaded_dbapi.Error as exc:
        disconnected = connection.dialect.is_disconnect(exc, driver, None)
        if disconnected:
            connection.invalidate(exc)
        raise _as_sqlalchemy_error(connection.engine, exc, sql, params, disconnected) from exc
    except BaseException:
        # Anything else midway (a worker's timeout, a bug): the pipeline's results
        # are in an unknown state; the session's rollback gets a new connection.
        connection.invalidate()
        raise
    return written.rowcount


def commits_alone() -> bool:
    """Whether a locked write can have a transaction of its own, in one round trip
    (`write_alone`): on favsync's own database (a site's `db` may have session or
    engine events that must see every transaction), on psycopg with pipeline mode,
    with nothing watching statements, and no transaction open in the session that
    the write would have to join."""
    current = state()
    engine = current.engine
    return (current.owns_database and engine.dialect.driver == "psycopg" and not _watched(engine)
            and _pipelines(engine.dialect.loaded_dbapi) and not in_transaction())


def write_alone(statement, values: dict, *, lock: str, first: tuple = ()) -> int:
    """Run a write in a transaction of its own, committed when this returns, after
    taking the lock named `lock`; return how many rows it wrote. Only where
    `commits_alone()`.

    `first`: (statement, values) pairs to run in the same transaction, between the
    lock and the write. Nothing here makes them depend on the write: a guarded
    write's company is guarded as it is, so that under the lock both write or neither.

    BEGIN, the lock, the writes and COMMIT go in one psycopg pipeline, one round trip,
    on a pooled connection outside the session. The connection is in autocommit for
    it: psycopg would send its own BEGIN and wait for it alone. After a disconnect
    the caller may send the writes again only if, once written, they write nothing
    (guarded writes): the lost answer may have been a COMMIT's.
    """
    engine = state().engine
    compiled = _compiled(statement, engine.dialect)
    company = [(_compiled(each, engine.dialect), each_values) for each, each_values in first]
    with _in_autocommit(engine, compiled.sql, values) as connection:
        with connection.pipeline():
            connection.execute("BEGIN")
            connection.execute(_LOCK, (_lock_id(lock),))
            for each, each_values in company:
                connection.execute(each.sql, each.params(each_values))
            written = connection.execute(compiled.sql, compiled.params(values))
            connection.execute("COMMIT")
    return written.rowcount


@functools.cache
def _pipelines(dbapi) -> bool:
    # psycopg's binary wheels bundle a libpq that has pipeline mode; one built
    # against a system libpq older than 14 has not.
    return dbapi.Pipeline.is_supported()


def _watched(engine: sa.Engine) -> bool:
    """Whether anything (echo, a host's tracing, a test counting statements) wants to see
    each statement: then reads and locked writes go through SQLAlchemy's Connection,
    which shows them."""
    return bool(engine.echo or engine.dispatch.before_cursor_execute
                or engine.dispatch.after_cursor_execute)


def _read_on_psycopg(engine: sa.Engine, reads: ThreadReads | None, statement,
                     values: dict | None, named: bool) -> list:
    """Run a read on a psycopg connection itself, in autocommit, for one round trip:
    the thread's own (`reads`), else one from the engine's pool.

    Not through a SQLAlchemy Connection: its checkout, isolation-level switch and
    result bookkeeping cost a read three times what psycopg does (BENCHMARKS.md).
    """
    compiled = _compiled(statement, engine.dialect)
    if reads is not None:
        found = reads.fetch(engine, compiled, values)
    else:
        with _in_autocommit(engine, compiled.sql, values) as connection:
            found = connection.execute(compiled.sql, compiled.params(values)).fetchall()
    return list(map(compiled.make_row, found)) if named else found


class ThreadReads(threading.local):
    """Each thread's connection for reads from favsync's own database, kept in autocommit.

    Opened from the engine's pool on the thread's first read (the pool's connect
    events run), then detached from it and kept for the thread's life, as Django
    keeps a persistent connection (CONN_MAX_AGE). A pooled read paid the pool's
    checkout and return and two switches of autocommit, some 90,000 instructions
    of a 2.2 million one (BENCHMARKS.md). Writes still take the pool's connections:
    a gunicorn worker holds one connection per thread more than its pool's.

    A connection whose read failed is closed, never used again; so is one opened
    before the engine was disposed (a disconnect disposes it, and the next read of
    every thread connects anew) or before pool_recycle's age. One inherited from
    the parent of a forked process is let go unclosed: closing it would end the
    parent's session (psycopg, collecting it, leaves it to the parent).
    """

    connection = None  # psycopg's
    pool = None  # the engine's pool it came from
    forks = 0  # the process's `_forks` when it was opened
    expires = math.inf  # by the engine's pool_recycle

    def usable(self, engine: sa.Engine) -> bool:
        """Whether this thread's next read may use its connection as it is."""
        return (self.pool is engine.pool and self.forks == _forks
                and time.monotonic() < self.expires)

    def fetch(self, engine: sa.Engine, compiled: _Compiled, values: dict | None) -> list[tuple]:
        """The rows of `compiled` bound to `values`, read on this thread's connection."""
        params = compiled.params(values)
        try:
            if not self.usable(engine):
                self._open(engine)
            return self.connection.execute(compiled.sql, params).fetchall()
        except engine.dialect.loaded_dbapi.Error as exc:
            disconnected = engine.dialect.is_disconnect(exc, self.connection, None)
            self.release()
            raise _as_sqlalchemy_error(engine, exc, compiled.sql, values, disconnected) from exc
        except BaseException:
            self.release()  # midway (a worker's timeout, a bug): its state is unknown
            raise

    def _open(self, engine: sa.Engine) -> None:
        self.release()
        pool = engine.pool
        pooled = engine.raw_connection()  # raises, as psycopg's, when no connection can be made
        connection = pooled.driver_connection
        pooled.detach()  # (after which the pool's proxy no longer names it)
        self.connection, self.pool, self.forks = connection, pool, _forks
        connection.autocommit = True
        recycle = getattr(pool, "_recycle", -1)  # SQLAlchemy's pool_recycle, in seconds
        self.expires = time.monotonic() + recycle if recycle >= 0 else math.inf

    def release(self) -> None:
        """Close this thread's connection (leave it, if this process inherited it)."""
        connection, self.connection, self.pool = self.connection, None, None
        if connection is not None and self.forks == _forks:
            connection.close()


def thread_reads(app: Flask, db: SQLAlchemy) -> ThreadReads | None:
    """Read connections, one per thread, for favsync's own database `db` (on psycopg;
    elsewhere None: SQLite's reads are alone as they are)."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.driver != "psycopg":
        return None
    reads = ThreadReads()
    # The disposing thread's at once (an app's shutdown, a test's); the others' at
    # their next read, which finds the engine's pool replaced.
    sa.event.listen(engine, "engine_disposed", lambda _engine: reads.release())
    return reads


_forks = 0  # how many forks this process is from the one that imported favsync


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


@contextlib.contextmanager
def _in_autocommit(engine: sa.Engine, sql: str, values: dict | None):
    """A psycopg connection from `engine`'s pool, in autocommit for the block.

    The pool, its reset on return and SQLAlchemy's disconnect handling stay: a
    dead connection is invalidated, and so is every other one the pool opened,
    as SQLAlchemy's own Connection would; the driver's error is raised as
    SQLAlchemy's (about `sql`). A connection whose block failed never goes back
    to the pool.
    """
    pooled = None
    try:
        pooled = engine.raw_connection()  # raises, as psycopg's, when no connection can be made
        connection = pooled.driver_connection
        connection.autocommit = True
        yield connection
        connection.autocommit = False
    except engine.dialect.loaded_dbapi.Error as exc:
        raise _lost(engine, pooled, exc, sql, values) from exc
    except BaseException:
        # Anything else midway (a worker's timeout, a bug): the connection may still be
        # in autocommit, where the session's next transaction would not be one.
        if pooled is not None:
            pooled.invalidate()
        raise
    finally:
        if pooled is not None:
            pooled.close()  # back to the pool


def _lost(engine: sa.Engine, pooled, exc: Exception, sql: str, values) -> sa.exc.DBAPIError:
    """The SQLAlchemy error for a driver's, as SQLAlchemy's Connection would raise it.

    A connection that failed is in an unknown state: it never goes back to the
    pool. When the database dropped it, the pool's other connections are as dead
    (opened before the loss), so the pool starts afresh.
    """
    dbapi_connection = pooled.dbapi_connection if pooled is not None else None
    disconnected = engine.dialect.is_disconnect(exc, dbapi_connection, None)
    if pooled is not None:
        pooled.invalidate(exc)
    return _as_sqlalchemy_error(engine, exc, sql, values, disconnected)


def _as_sqlalchemy_error(
    engine: sa.Engine, exc: Exception, sql: str, values, disconnected: bool
) -> sa.exc.DBAPIError:
    """SQLAlchemy's error for a driver's; on a disconnect, the pool starts afresh first:
    every connection it opened before the loss is as dead as the one that failed."""
    if disconnected:
        engine.dispose()
    return sa.exc.DBAPIError.instance(
        sql, values, exc, engine.dialect.loaded_dbapi.Error, hide_parameters=engine.hide_parameters,
        connection_invalidated=disconnected, dialect=engine.dialect,
    )


@dataclass(frozen=True)
class _Compiled:
    """A statement compiled once for psycopg: its SQL, its fixed parameters and how to name a row."""

    sql: str
    fixed: dict
    make_row: Callable[[tuple], tuple]
    converted: tuple  # (name, converter) of each parameter psycopg cannot take as it is

    def params(self, values: dict | None) -> dict:
        if not values:
            return self.fixed
        params = {**self.fixed, **values}
        for name, convert in self.converted:
            params[name] = convert(params[name])
        return params


# Statements are built and compiled once per process, on first use, and then shared
# by every thread. SQLAlchemy adapts an aliased entity's columns lazily, in state the
# threads share: once, two threads of a new gunicorn worker building the favourites
# read at the same moment got SQL naming the table where it meant its alias (a
# GroupingError, a 500; tests/test_production.py's restart under load, 2026-11-27).
# So a first build is one thread at a time. Later calls are cache hits: no lock.
_BUILDING = threading.RLock()


def built_once(maxsize: int | None = None):
    """functools.lru_cache for functions that build or compile SQL: a miss builds
    under the process-wide lock."""
    def decorate(build):
        @functools.wraps(build)
        def alone(*args, **kwargs):
            with _BUILDING:
                return build(*args, **kwargs)
        return functools.lru_cache(maxsize=maxsize)(alone)
    return decorate


@built_once(maxsize=256)
def _compiled(statement, dialect) -> _Compiled:
    # SQLAlchemy would otherwise hash the whole statement on every request to find
    # it in its cache. Parameters go to psycopg as they are but lists bound as JSON:
    # no other type on a hot path needs converting, and psycopg takes and returns
    # timezone-aware datetimes itself.
    compiled = statement.compile(dialect=dialect)
    sql = str(compiled)
    fixed = {}
    for bind in compiled.binds.values():
        if bind.required:
            continue
        name, value = compiled.bind_names[bind], bind.effective_value
        if bind.unique and type(value) is int and value >= 0:  # -5 after a minus: "--", a comment
            # A number the statement itself holds (a LIMIT 1, a coalesce's 0), no caller
            # names it: written into the SQL, psycopg has one parameter less to adapt.
            sql = sql.replace(f"%({name})s", str(value))
        else:
            fixed[name] = value
    converted = tuple((compiled.bind_names[bind], bind.type.bind_processor(dialect))
                      for bind in compiled.binds.values() if isinstance(bind.type, JsonList))
    columns = statement.selected_columns.keys() if isinstance(statement, sa.Select) else ()
    # The named tuple's own tuple.__new__, without its __new__'s argument handling.
    make_row = functools.partial(tuple.__new__, collections.namedtuple("Row", columns))
    return _Compiled(sql, fixed, make_row, converted)


_reading_engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def reading_engine(engine: sa.Engine) -> sa.Engine:
    """`engine` (its pool too), handing out its connections in autocommit for reads."""
    reading = _reading_engines.get(engine)
    if reading is None:
        # pysqlite begins a transaction only before a write: its reads are alone as they are.
        reading = engine if engine.dialect.name == "sqlite" else engine.execution_options(
            isolation_level="AUTOCOMMIT"
        )
        _reading_engines[engine] = reading
    return reading


def again_if_disconnected(attempt: Callable[[], T], reset: Callable[[], None] | None = None) -> T:
    """Run `attempt`; if its connection was found dead, `reset` (if given) and run it once more.

    SQLAlchemy's optimistic disconnect handling: a disconnect error invalidates the
    connection and every other one the pool opened before it, so the second
    attempt connects anew. Only for what is safe to repeat (reads).
    """
    try:
        return attempt()
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("database connection lost; trying again on a new one")
        if reset is not None:
            reset()
        return attempt()


class JsonList(sa.TypeDecorator):
    """A list (of values, or of rows as tuples) bound as one JSON text, for PostgreSQL
    to take apart: psycopg's array parameters check every element of a list with a
    regular expression, ~0.3 ms for a sync's 500 ids, several times json.dumps."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else json.dumps(list(value))


def json_elements(name: str):
    """As SQL, the elements of the JSON array bound as `name` (a JsonList), one row each."""
    return sa.func.json_array_elements(_bound_json(name))


def _bound_json(name: str):
    return sa.cast(sa.bindparam(name, type_=JsonList), postgresql.JSON)


def in_bound_list(column, name: str, dialect: str):
    """`column` IN the list bound as `name`, in a statement that is built once: on
    PostgreSQL one JSON parameter, so the SQL text is the same for every length and
    the server reuses its plan; elsewhere an expanding IN."""
    if dialect == "postgresql":
        element = sa.func.json_array_elements_text(_bound_json(name))
        return column.in_(sa.select(element if isinstance(column.type, sa.String)
                                    else sa.cast(element, column.type)))
    return column.in_(sa.bindparam(name, expanding=True))


def insert(table, dialect: str | None = None):
    """An INSERT that supports ON CONFLICT on this app's database (or on `dialect`'s)."""
    if (dialect or dialect_name()) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def serialize(key: str) -> None:
    """Hold a lock named `key` until the current transaction ends.

    Must come before the transaction's first write.
    """
    db = session()
    if dialect_name() == "postgresql":
        db.connection().exec_driver_sql(_LOCK, (_lock_id(key),))
        return
    # SQLite has one writer at a time. pysqlite opens a transaction lazily, just
    # before the first write, so reads before it would see a snapshot that a
    # concurrent writer can invalidate. BEGIN IMMEDIATE takes the write lock now
    # (waiting up to the busy timeout), which serialises this transaction whole.
    connection = db.connection()
    if not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _lock_id(key: str) -> int:
    """Map a lock name to PostgreSQL's signed 64-bit advisory lock space."""
    digest = hashlib.sha256(f"favsync:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic filter for a host's migrations: favsync's tables are favsync's to migrate.

    Pass it to the host's Flask-Migrate: Migrate(app, db, include_name=favsync.include_name).
    """
    return type_ != "table" or not (name or "").startswith(TABLE_PREFIX)


def include_only_favsync(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic filter for favsync's own migrations: never touch a host's tables."""
    return type_ != "table" or (name or "").startswith(TABLE_PREFIX)


def own_database(app: Flask, uri: str | None) -> SQLAlchemy:
    """Give a standalone app its database: `uri` (FAVSYNC_SQLALCHEMY_DATABASE_URI), else SQLite."""
    if uri is None:
        uri = f"sqlite:///{Path(app.instance_path) / 'favsync.sqlite3'}"
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.setdefault("SQLALCHEMY_DATABASE_URI", uri)
    # No pool_pre_ping: it costs every request a round trip. A connection the
    # database dropped is found when used, and reads try again (`read`).
    options = {}
    if uri.startswith("sqlite"):
        # Writers queue on SQLite's single write lock instead of failing at once.
        options["connect_args"] = {"timeout": 30}
    else:
        # The connection used last is handed out first: a write gets the one the
        # last write proved alive, and idle extras age out of the pool. (Reads keep
        # a connection per thread outside it: `ThreadReads`.)
        options["pool_use_lifo"] = True
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", options)
    db = SQLAlchemy(metadata=Base.metadata)
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sa.event.listen(db.engine, "connect", _sqlite_pragmas)
        elif db.engine.dialect.name == "postgresql":
            sa.event.listen(db.engine, "connect", _plan_once)

    @app.teardown_appcontext  # runs before Flask-SQLAlchemy's own teardown
    def release_session(_exc) -> None:
        if not db.session.registry.has():  # a request that only read made no Session
            return
        try:
            db.session.remove()
        except sa.exc.DBAPIError:
            # The database went away mid-request (a restart, a failover): rolling back
            # on the dead connection fails, so drop it; the pool opens a new one.
            log.warning("database connection lost; discarding it")
            db.session().invalidate()
            db.session.remove()

    # release_session does Flask-SQLAlchemy's own teardown's work, which after every
    # read (no Session made) raised and caught a KeyError looking for one to remove.
    # (Its name is Flask-SQLAlchemy's own: should it change, both teardowns run.)
    own_teardown = getattr(db, "_teardown_session", None)
    if own_teardown in app.teardown_appcontext_funcs:
        app.teardown_appcontext_funcs.remove(own_teardown)
    return db


# favsync's statements are few, each runs thousands of times, and each finds one
# client's (or token's) rows by an index whatever its values: they are planned once
# per connection (psycopg prepares a statement on its fifth run), not on every run.
# Left to choose, PostgreSQL planned the favourites reads anew every time (it
# estimates their generic plan dearer; it is the same index scans): 0.1-0.3 ms of
# its CPU per read, a third of what a favourites list costs it (BENCHMARKS.md).
PLAN_ONCE = "SET plan_cache_mode = force_generic_plan"


def _plan_once(dbapi_connection, _record) -> None:
    info = getattr(dbapi_connection, "info", dbapi_connection)  # psycopg 3, psycopg2
    if getattr(info, "server_version", 0) < 120000:  # the setting is PostgreSQL 12's
        return
    cursor = dbapi_connection.cursor()
    cursor.execute(PLAN_ONCE)
    cursor.close()
    dbapi_connection.commit()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers proceed while one writer commits; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()

"""The databases and rate-limit stores one test run uses: SQLite alone, or PostgreSQL + Redis.

FAVSYNC_TEST_BACKEND=postgres runs the suite against PostgreSQL and Redis on
127.0.0.1 (override with FAVSYNC_TEST_POSTGRES_URI and FAVSYNC_TEST_REDIS_URI).
Each run creates its own database and key prefix and removes them afterwards.
When a server cannot be reached the run fails; it never skips.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

import flask_migrate
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from favsync import create_app

from favsync.database import MIGRATIONS_DIRECTORY as MIGRATIONS

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("favsync_listing_events", "favsync_messages", "favsync_api_keys", "favsync_agents",
          "favsync_outbox", "favsync_favorites", "favsync_magic_links", "favsync_clients", "favsync_brokerages")


def migrate(database_uri: str, config: dict) -> None:
    app = create_app({**config, "FAVSYNC_SQLALCHEMY_DATABASE_URI": database_uri})
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS)
        app.extensions["favsync"].db.engine.dispose()


class SQLiteBackend:
    """A migrated template file, copied for every test; memory:// rate limits."""

    name = "sqlite"

    def __init__(self, workdir: Path, config: dict) -> None:
        self._workdir = workdir
        self._template = workdir / "template.sqlite3"
        migrate(f"sqlite:///{self._template}", config)

    def database_uri(self, tmp_path: Path) -> str:
        path = tmp_path / "favsync.sqlite3"
        shutil.copy(self._template, path)
        return f"sqlite:///{path}"

    @contextlib.contextmanager
    def scratch_database(self):
        path = self._workdir / f"scratch-{uuid.uuid4().hex}.sqlite3"
        yield f"sqlite:///{path}"
        path.unlink(missing_ok=True)

    def ratelimit_storage(self) -> dict:
        return {"FAVSYNC_RATELIMIT_STORAGE_URI": "memory://"}

    def close(self) -> None:
        pass


class PostgresBackend:
    """One fresh PostgreSQL database per run, emptied between tests; Redis rate limits."""

    name = "postgres"

    def __init__(self, config: dict) -> None:
        self._admin_uri = os.environ.get(
            "FAVSYNC_TEST_POSTGRES_URI", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        )
        self._redis_uri = os.environ.get("FAVSYNC_TEST_REDIS_URI", "redis://127.0.0.1:6379/0")
        self.run_id = uuid.uuid4().hex[:12]
        # pre-ping: the restart test stops PostgreSQL under these pools.
        self._admin = sa.create_engine(
            self._admin_uri, isolation_level="AUTOCOMMIT", pool_pre_ping=True
        )
        self._created: list[str] = []
        self._check_reachable()
        self._uri = self._create_database(f"favsync_test_{self.run_id}")
        migrate(self._uri, config)
        self._engine = sa.create_engine(self._uri, pool_pre_ping=True)

    def _check_reachable(self) -> None:
        import redis

        try:
            with self._admin.connect():
                pass
        except sa.exc.OperationalError as exc:
            raise RuntimeError(
                f"PostgreSQL is not reachable at {self._admin_uri} "
                f"(start it: see DEVELOPERS.md): {exc.orig}"
            ) from None
        try:
            redis.Redis.from_url(self._redis_uri).ping()
        except redis.RedisError as exc:
            raise RuntimeError(
                f"Redis is not reachable at {self._redis_uri} (start it: see DEVELOPERS.md): {exc}"
            ) from None

    def _create_database(self, name: str) -> str:
        with self._admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return make_url(self._admin_uri).set(database=name).render_as_string(hide_password=False)

    def _drop_database(self, name: str) -> None:
        with self._admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.remove(name)

    def database_uri(self, tmp_path: Path) -> str:
        with self._engine.begin() as connection:
            connection.exec_driver_sql(
                f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"
            )
            # What the first migration seeds: the default brokerage, id 1.
            connection.exec_driver_sql("INSERT INTO favsync_brokerages (name) VALUES ('favsync')")
        return self._uri

    @contextlib.contextmanager
    def scratch_database(self):
        name = f"favsync_test_{self.run_id}_{uuid.uuid4().hex[:8]}"
        uri = self._create_database(name)
        try:
            yield uri
        finally:
            self._drop_database(name)

    def ratelimit_storage(self) -> dict:
        # A prefix per call keeps tests' counters apart on one shared Redis.
        return {
            "FAVSYNC_RATELIMIT_STORAGE_URI": self._redis_uri,
            "FAVSYNC_RATELIMIT_KEY_PREFIX": f"favsync-test-{self.run_id}-{uuid.uuid4().hex[:8]}",
        }

    def close(self) -> None:
        import redis

        self._engine.dispose()
        for name in list(self._created):
            self._drop_database(name)
        self._admin.dispose()
        client = redis.Redis.from_url(self._redis_uri)
        for key in client.scan_iter(f"*favsync-test-{self.run_id}-*"):
            client.delete(key)


def open_backend(workdir: Path, config: dict):
    choice = os.environ.get("FAVSYNC_TEST_BACKEND", "sqlite")
    if choice == "sqlite":
        return SQLiteBackend(workdir, config)
    if choice == "postgres":
        return PostgresBackend(config)
    raise RuntimeError(f"FAVSYNC_TEST_BACKEND must be sqlite or postgres, not {choice!r}")

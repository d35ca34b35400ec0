"""Guarantees that need the production stack: limits shared through Redis, a PostgreSQL restart."""
import os
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest

from conftest import API, bearer

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        os.environ.get("FAVSYNC_TEST_BACKEND", "sqlite") != "postgres",
        reason="needs PostgreSQL and Redis: make test-postgres",
    ),
]


def test_request_limits_hold_across_workers(start_server):
    server = start_server(FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP="6 per hour")
    bodies = [{"email": f"ip{i}@example.com"} for i in range(16)]

    replies = server.race(16, "POST", f"{API}/magic-link", bodies)

    assert Counter(r.status for r in replies) == {202: 6, 429: 10}
    assert {r.body["error"]["code"] for r in replies if r.status == 429} == {"rate_limited"}


def pg_ctlcluster(action: str) -> None:
    versions = sorted(Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    if not versions:
        raise RuntimeError("the restart test needs a local cluster run by pg_ctlcluster")
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", action]
    if action == "stop":
        command += ["-m", "fast"]  # disconnect the workers' pooled connections now
    subprocess.run(command, check=True, timeout=120, capture_output=True)


def test_a_database_restart_under_load_leaves_the_service_healthy(start_server, inbox):
    server = start_server()
    headers = bearer(server.login(inbox, "restart@example.com").body["auth_token"])
    during_load, stop, started = [], threading.Event(), threading.Event()

    def load():
        while not stop.is_set():
            during_load.append(server.request("GET", API, None, headers))
            if len(during_load) >= 20:
                started.set()

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    started.wait(timeout=60)
    pg_ctlcluster("stop")
    try:
        outage = [server.request("GET", API, None, headers) for _ in range(8)]
        readiness = server.request("GET", "/readyz")
    finally:
        pg_ctlcluster("start")
    recovered = [server.request("GET", API, None, headers) for _ in range(12)]
    stop.set()
    for worker in workers:
        worker.join()

    assert [r.status for r in outage] == [503] * 8
    assert {r.body["error"]["code"] for r in outage} == {"database_unavailable"}
    assert readiness.status == 503 and readiness.body["failing"] == ["database"]
    assert [r.status for r in recovered] == [200] * 12
    assert server.request("GET", "/readyz").status == 200
    assert {r.status for r in during_load} <= {200, 503}, server.output()[-5000:]
    assert not [r for r in during_load if "not_json" in r.body]


def test_a_connection_killed_mid_request_is_discarded_not_raised(app, client):
    import sqlalchemy as sa

    db = app.extensions["favsync"].db
    with app.app_context():
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with db.engine.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    # Leaving the app context above rolled back on the dead connection; it must not raise.

    assert client.get("/readyz").status_code == 200


def drop_connections(app, backend_pid: int | None = None) -> None:
    """Have PostgreSQL end every connection `app` holds (or the one of `backend_pid`),
    as a restart or failover would."""
    import psycopg

    from conftest import engine

    url = engine(app).url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                      " AND (%(pid)s::int IS NULL OR pid = %(pid)s)", {"pid": backend_pid})


def test_a_read_on_a_connection_the_database_dropped_is_tried_again_on_a_new_one(client, auth, app):
    headers = auth.headers("dropped@example.com")
    client.post(f"{API}/sync", json={"favorites": ["A1"]}, headers=headers)
    drop_connections(app)

    listing = client.get(API, headers=headers)
    drop_connections(app)
    syncing = client.post(f"{API}/sync", json={"favorites": ["A1", "B2"]}, headers=headers)

    assert listing.status_code == 200 and listing.json["favorites"] == ["A1"]
    assert syncing.status_code == 200 and syncing.json["favorites"] == ["A1", "B2"]


def test_a_write_on_a_dropped_connection_answers_503_and_the_next_one_works(client, app):
    client.post(f"{API}/magic-link", json={"email": "first@example.com"})
    drop_connections(app)

    lost = client.post(f"{API}/magic-link", json={"email": "lost@example.com"})
    again = client.post(f"{API}/magic-link", json={"email": "lost@example.com"})

    assert lost.status_code == 503 and lost.json["error"]["code"] == "database_unavailable"
    assert again.status_code == 202


def test_a_sync_whose_write_meets_a_dropped_connection_takes_its_lock_again(client, auth, app):
    # The read went well; then the database drops the connection the write is
    # about to use (a restart, an idle timeout): the lock, the transaction's first
    # statement, is taken again on a new one, and nothing is lost or doubled.
    import sqlalchemy as sa

    from conftest import engine

    headers = auth.headers("idle@example.com")
    client.post(f"{API}/sync", json={"favorites": ["A1"]}, headers=headers)
    pending = [True]

    def drop_it(conn, cursor, statement, *args):
        if pending and "pg_advisory_xact_lock" in statement:
            pending.pop()
            drop_connections(app, cursor.connection.info.backend_pid)

    sa.event.listen(engine(app), "before_cursor_execute", drop_it)
    try:
        response = client.post(f"{API}/sync", json={"favorites": ["A1", "B2"]}, headers=headers)
    finally:
        sa.event.remove(engine(app), "before_cursor_execute", drop_it)

    assert not pending
    assert response.status_code == 200 and response.json["favorites"] == ["A1", "B2"]
    assert response.json["version"] == 2


class TestARestartBetweenASyncsReadAndItsWrite:
    """With nothing listening to statements, the lock and the write go in one pipeline:
    when it meets a dead connection, it is sent again, once, on a live one, whichever
    connection the pool hands out next (a site's pool is first in, first out)."""

    @pytest.fixture(params=["lifo", "fifo"])
    def app(self, make_app, request):
        return make_app() if request.param == "lifo" else make_app(SQLALCHEMY_ENGINE_OPTIONS={})

    def test_the_write_is_sent_again_on_a_live_connection(self, client, auth, app):
        import sqlalchemy as sa

        from conftest import engine

        headers = auth.headers("pipelined@example.com")
        client.post(f"{API}/sync", json={"favorites": ["A1"]}, headers=headers)
        idle = [engine(app).raw_connection() for _ in range(3)]  # the pool holds more than one
        for pooled in idle:
            pooled.close()
        checkouts = []

        def restart_at_the_write(dbapi_connection, record, proxy):
            # The sync's list read and its planning read ran on the thread's own read
            # connection (the pool's no longer): the first checkout is the write's.
            checkouts.append(dbapi_connection.info.backend_pid)
            if len(checkouts) == 1:
                drop_connections(app)  # every one, as a restart does (the read connection's too)

        pool = engine(app).pool  # replaced by a new one (its listeners too) after the loss
        sa.event.listen(pool, "checkout", restart_at_the_write)
        try:
            response = client.post(f"{API}/sync", json={"favorites": ["A1", "B2"]}, headers=headers)
        finally:
            sa.event.remove(pool, "checkout", restart_at_the_write)

        assert response.status_code == 200 and response.json["favorites"] == ["A1", "B2"]
        assert len(checkouts) == 2  # the write, sent again once
        stored = client.get(API, headers=headers).json
        assert (stored["favorites"], stored["version"]) == (["A1", "B2"], 2)  # written once


SESSION_ID = "550e8400-e29b-41d4-a716-446655440000"


def losing_the_first_commits_answer(monkeypatch, meanwhile=lambda: None) -> list[int]:
    """Make favsync's next write committed alone go through, then fail as if the connection
    died before COMMIT's answer came back (`meanwhile` runs in between, as another request).
    Returns how many rows each write committed alone wrote."""
    import sqlalchemy as sa

    from favsync import database, sync

    written = []

    def committed_then_lost(statement, values, **kwargs):
        written.append(database.write_alone(statement, values, **kwargs))
        if len(written) == 1:
            monkeypatch.setattr(sync, "write_alone", database.write_alone)
            meanwhile()
            monkeypatch.setattr(sync, "write_alone", committed_then_lost)
            raise sa.exc.DBAPIError("COMMIT", None, Exception("server closed the connection"),
                                    connection_invalidated=True)
        return written[-1]

    monkeypatch.setattr(sync, "write_alone", committed_then_lost)
    return written


@pytest.mark.parametrize("merge", ["union", "three-way", "browser session", "removal"])
def test_a_change_whose_commit_answer_was_lost_is_answered_and_told_once(
    client, auth, app, monkeypatch, merge
):
    # The change committed, then the connection died before its answer came back (a
    # restart at that very moment). Sent again, the guarded write finds the version
    # moved and writes nothing; under the lock the change is found written, and is
    # answered (and told to the site) as this request's, not planned again.
    import sqlalchemy as sa

    from conftest import signalled
    from favsync import favorites_changed

    headers = auth.headers("lost-answer@example.com")
    if merge == "browser session":
        headers["X-Session-ID"] = SESSION_ID
    client.post(f"{API}/sync", json={"favorites": ["A1"]}, headers=headers)
    written = losing_the_first_commits_answer(monkeypatch)
    with signalled(favorites_changed, app) as told:
        if merge == "removal":
            response = client.delete(f"{API}/A1", headers=headers)
        else:
            body = {"favorites": ["A1", "B2"], **({"base_version": 1} if merge == "three-way" else {})}
            response = client.post(f"{API}/sync", json=body, headers=headers)
    monkeypatch.undo()

    expected = [] if merge == "removal" else ["A1", "B2"]
    assert written == [1, 0]  # written once; sent again, it found the version moved
    assert response.status_code == 200
    assert (response.json["favorites"], response.json["version"]) == (expected, 2)
    assert [(t["added"], t["removed"]) for t in told] == (
        [([], ["A1"])] if merge == "removal" else [(["B2"], [])])
    stored = client.get(API, headers=headers).json
    assert (stored["favorites"], stored["version"]) == (expected, 2)
    assert client.get(API, headers=headers, query_string={"since": 1}).json["version"] == 2
    if merge == "browser session":  # its base was written with the change
        from conftest import rows
        from favsync.models import SyncSession

        assert rows(app, sa.select(SyncSession.version)) == [2]


@pytest.mark.parametrize("limit", [3, 2])
def test_a_browser_sessions_base_is_what_it_received_when_another_change_came_first(
    make_app, inbox, monkeypatch, limit
):
    # Another device's change lands between the sync's read and its lock: the guarded
    # write, and the session's base sent with it, write nothing; the sync is planned
    # again under the lock. Its base is the version it then answers, or, refused as
    # too many, the one it had: never the stale plan's.
    import sqlalchemy as sa

    from conftest import Auth, rows
    from favsync import database, sync
    from favsync.models import SyncSession

    app = make_app(FAVSYNC_MAX_FAVORITES=limit)
    client = app.test_client()
    headers = Auth(client, inbox).headers("overtaken@example.com")
    tab = {**headers, "X-Session-ID": SESSION_ID}
    client.post(f"{API}/sync", json={"favorites": ["A1"]}, headers=tab)
    laptop = [lambda: client.post(f"{API}/sync", json={"favorites": ["A1", "C3"]}, headers=headers)]

    def after_the_laptop(statement, values, **kwargs):
        if laptop:
            assert laptop.pop()().json["version"] == 2
        return database.write_alone(statement, values, **kwargs)

    monkeypatch.setattr(sync, "write_alone", after_the_laptop)
    response = client.post(f"{API}/sync", json={"favorites": ["A1", "B2"]}, headers=tab)
    monkeypatch.undo()

    base = rows(app, sa.select(SyncSession.version).where(SyncSession.session_id == SESSION_ID))
    if limit == 3:
        assert (response.json["favorites"], response.json["version"]) == (["A1", "C3", "B2"], 3)
        assert base == [3]
    else:
        assert response.json["error"]["code"] == "too_many_favorites"
        assert base == [1]


def test_a_lost_commit_answer_then_another_change_plans_from_the_base_the_session_holds(
    client, auth, app, monkeypatch
):
    # The tab's change and its session's base commit, the answer is lost, and another
    # device changes the favourites before the change is sent again: planned again, the
    # merge starts from the base the tab holds (1), not the one its lost change wrote (3),
    # so the laptop's C3, never seen by the tab, stays.
    headers = auth.headers("lost-then-overtaken@example.com")
    tab = {**headers, "X-Session-ID": SESSION_ID}
    assert client.post(f"{API}/sync", json={"favorites": ["A1"]}, headers=tab).json["version"] == 1
    assert client.post(f"{API}/sync", json={"favorites": ["A1", "C3"]},
                       headers=headers).json["version"] == 2  # the laptop

    def the_phone_changes_them():
        assert client.post(f"{API}/sync", json={"favorites": ["D4"]},
                           headers=headers).json["version"] == 4

    losing_the_first_commits_answer(monkeypatch, meanwhile=the_phone_changes_them)
    response = client.post(f"{API}/sync", json={"favorites": ["A1", "B2"]}, headers=tab)
    monkeypatch.undo()

    assert response.status_code == 200 and response.json["merge"] == "three-way"
    assert sorted(response.json["favorites"]) == ["A1", "B2", "C3", "D4"]
    assert sorted(client.get(API, headers=headers).json["favorites"]) == ["A1", "B2", "C3", "D4"]


def test_purge_and_a_sessions_sync_of_a_purged_tombstone_do_not_deadlock(
    client, auth, app, make_app, monkeypatch
):
    # The sync writes the session's base, then the favourite; the purge deletes the
    # tombstone, then the session. Paused between the two, a purge in one transaction
    # holds the tombstone while the sync holds the session: each waits for the other.
    import sqlalchemy as sa

    from conftest import engine
    from test_sync_versions import forget_tombstones

    tab = {**auth.headers("purged@example.com"), "X-Session-ID": SESSION_ID}
    client.post(f"{API}/sync", json={"favorites": ["X1"]}, headers=tab)
    client.post(f"{API}/sync", json={"favorites": []}, headers=tab)  # X1 is a tombstone
    forget_tombstones(app, days=100)  # as are the tombstone and the session's base
    purging = make_app()  # its own engine: the sync's stays unwatched (one round trip)
    at_sessions, resume = threading.Event(), threading.Event()

    def pause(conn, cursor, statement, *args):
        if statement.startswith("DELETE FROM favsync_sync_sessions"):
            at_sessions.set()
            resume.wait(10)

    sa.event.listen(engine(purging), "before_cursor_execute", pause)
    purged = []
    purge = threading.Thread(target=lambda: purged.append(
        purging.test_cli_runner().invoke(args=["favsync", "purge"])))
    purge.start()
    assert at_sessions.wait(10)
    synced = []
    sync = threading.Thread(target=lambda: synced.append(
        client.post(f"{API}/sync", json={"favorites": ["X1"]}, headers=tab)))  # X1 hearted again
    sync.start()
    sync.join(1)  # done, or waiting for the purge
    resume.set()
    sync.join(30)
    purge.join(30)

    assert purged[0].exit_code == 0, purged[0].output
    assert "1 tombstones" in purged[0].output
    assert synced[0].status_code == 200, synced[0].json
    assert synced[0].json["favorites"] == ["X1"]

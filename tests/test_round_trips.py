"""What the read path costs on PostgreSQL, counted off the wire: one round trip per read.

Statement counts (tests/test_favorites.py) hold on both backends; these count what
psycopg actually waits for, BEGIN and COMMIT included.
"""
import os
import threading

import pytest

from conftest import API, bearer, count_round_trips, engine

pytestmark = pytest.mark.skipif(
    os.environ.get("FAVSYNC_TEST_BACKEND", "sqlite") != "postgres",
    reason="needs PostgreSQL: make test-postgres",
)


@pytest.fixture
def headers(auth):
    return auth.headers("trips@example.com")


def sync(client, headers, ids, **kwargs):
    return client.post(f"{API}/sync", json={"favorites": ids}, headers=headers, **kwargs)


def test_a_read_is_one_round_trip_with_no_transaction_around_it(client, headers, app):
    sync(client, headers, ["A1", "B2"])
    with count_round_trips(app) as listing:
        etag = client.get(API, headers=headers).headers["ETag"]
    with count_round_trips(app) as unchanged:
        assert client.get(API, headers={**headers, "If-None-Match": etag}).status_code == 304
    with count_round_trips(app) as changes:
        client.get(API, headers=headers, query_string={"since": 0})

    for trips in (listing, unchanged, changes):
        assert len(trips) == 1 and trips[0].startswith("SELECT"), trips


def test_a_sync_that_changes_nothing_only_reads(client, headers, app):
    sync(client, headers, [f"L{i}" for i in range(10)])
    with count_round_trips(app) as trips:
        assert sync(client, headers, [f"L{i}" for i in range(10)]).json["version"] == 1

    assert len(trips) == 1 and trips[0].startswith("SELECT"), trips


@pytest.mark.parametrize("count", [10, 500])
def test_a_sync_that_adds_reads_then_locks_and_writes_once(client, headers, app, count):
    client.get(API, headers=headers)  # the thread's read connection is open: the write still begins
    with count_round_trips(app) as trips:
        assert sync(client, headers, [f"L{i}" for i in range(count)]).status_code == 200

    # The list (as GET reads it: are they all held?), the rows to plan from, then
    # BEGIN, the lock, the write and COMMIT in one pipeline: three round trips.
    assert len(trips) == 3 and [trip.split()[0] for trip in trips[:2]] == ["SELECT", "SELECT"]
    assert [statement.split()[0] for statement in trips[2].split(" + ")] == [
        "BEGIN", "SELECT", "INSERT", "COMMIT"]
    assert "pg_advisory_xact_lock" in trips[2]


def test_a_browser_sessions_sync_writes_its_base_in_the_changes_round_trip(client, headers, app):
    # favsync.js sends X-Session-ID on every heart: the session's base is written in
    # the change's pipeline, before the rows and guarded as they are.
    tab = {**headers, "X-Session-ID": "550e8400-e29b-41d4-a716-446655440000"}
    with count_round_trips(app) as trips:
        assert sync(client, tab, ["A1"]).status_code == 200
    with count_round_trips(app) as again:
        assert sync(client, tab, ["A1"]).status_code == 200  # at its base: only read

    # The rows to plan from (and the session's base), then the write: two round trips.
    assert len(trips) == 2 and trips[0].startswith("SELECT"), trips
    assert [statement.split()[0] for statement in trips[1].split(" + ")] == [
        "BEGIN", "SELECT", "INSERT", "INSERT", "COMMIT"]
    assert "favsync_sync_sessions" in trips[1].split(" + ")[2]
    assert len(again) == 1 and again[0].startswith("SELECT"), again


@pytest.fixture
def webhooks(config):
    config["FAVSYNC_WEBHOOK_URL"] = "http://127.0.0.1:9/events"  # queued, never sent here
    config["FAVSYNC_WEBHOOK_SECRET"] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_sync_whose_change_has_company_commits_it_in_the_session(webhooks, client, headers, app):
    # An event for the CRM is written after the change, in its transaction: BEGIN waits
    # alone (psycopg's), then the lock and the write in one pipeline, the event, COMMIT.
    with count_round_trips(app) as trips:
        assert sync(client, headers, ["A1"]).status_code == 200

    change = trips[:trips.index("COMMIT") + 1]  # then the event is delivered, here inline
    assert [trip.split()[0] for trip in change] == [
        "SELECT", "SELECT", "BEGIN", "SELECT", "INSERT", "COMMIT"], trips
    assert [statement.split()[0] for statement in trips[3].split(" + ")] == ["SELECT", "INSERT"]
    assert "favsync_outbox" in trips[4]


def test_a_sync_of_held_ids_reads_what_a_list_reads(client, headers, app):
    sync(client, headers, ["A1", "B2", "C3"])
    with count_round_trips(app) as listing:
        client.get(API, headers=headers)
    with count_round_trips(app) as syncing:
        assert sync(client, headers, ["C3", "A1"]).json["favorites"] == ["A1", "B2", "C3"]

    assert syncing == listing  # one statement, the same one


def test_a_removal_reads_then_locks_and_writes_once(client, headers, app):
    sync(client, headers, ["A1", "B2"])
    with count_round_trips(app) as trips:
        client.delete(f"{API}/A1", headers=headers)
    with count_round_trips(app) as absent:
        client.delete(f"{API}/A1", headers=headers)

    assert len(trips) == 2 and trips[0].startswith("SELECT")
    assert [statement.split()[0] for statement in trips[1].split(" + ")] == [
        "BEGIN", "SELECT", "INSERT", "COMMIT"]
    assert "pg_advisory_xact_lock" in trips[1]
    assert len(absent) == 1


def test_a_token_for_an_ended_session_is_refused_in_that_one_round_trip(client, auth, app):
    headers = auth.headers("ended@example.com")
    client.post(f"{API}/logout", json={}, headers=headers)
    with count_round_trips(app) as trips:
        assert client.get(API, headers=headers).status_code == 401

    assert len(trips) == 1


def read_connection(app):
    """This thread's own connection for favsync's reads (None before its first read)."""
    return app.extensions["favsync"].reads.connection


def test_a_threads_reads_keep_one_connection_of_its_own_in_autocommit(app):
    import sqlalchemy as sa

    from favsync import favorites_of

    checkouts = []

    def checkout(*_):
        checkouts.append(1)

    with app.app_context():
        favorites_of(1)
        mine = read_connection(app)
        sa.event.listen(engine(app).pool, "checkout", checkout)
        for _ in range(3):
            favorites_of(1)
        sa.event.remove(engine(app).pool, "checkout", checkout)

    elsewhere = []

    def read_in_another_thread():
        with app.app_context():
            favorites_of(1)
            elsewhere.append(read_connection(app).info.backend_pid)

    thread = threading.Thread(target=read_in_another_thread)
    thread.start()
    thread.join()

    assert read_connection(app) is mine and mine.autocommit and not mine.closed
    assert checkouts == []  # the pool lent it once, before; the pool's are for writes
    assert elsewhere and elsewhere != [mine.info.backend_pid]  # a thread's is its own


def test_a_read_that_fails_midway_never_uses_its_connection_again(app, monkeypatch):
    import psycopg

    from favsync import favorites_of

    def interrupted(self):
        raise RuntimeError("interrupted with the answer unread")

    with app.app_context():
        favorites_of(1)
        failed = read_connection(app)
        monkeypatch.setattr(psycopg.Cursor, "fetchall", interrupted)
        with pytest.raises(RuntimeError):
            favorites_of(1)
        monkeypatch.undo()

        assert failed.closed and read_connection(app) is None
        assert favorites_of(1) == []
        assert read_connection(app).autocommit
        with engine(app).connect() as connection:  # the pool's were never switched
            assert connection.connection.driver_connection.autocommit is False


def test_on_a_sites_db_a_read_that_fails_midway_leaves_no_pooled_connection_in_autocommit(
    make_host, monkeypatch
):
    # A site's shared `db`: reads take its pool's connections (its pool events see
    # them), switched to autocommit for the read and back before they return.
    from favsync import database, favorites_of

    def interrupted(self, values):
        raise RuntimeError("interrupted after the switch to autocommit")

    site = make_host()
    with site.app_context():
        favorites_of(1)
        assert site.extensions["favsync"].reads is None  # no connections of its own
        monkeypatch.setattr(database._Compiled, "params", interrupted)
        with pytest.raises(RuntimeError):
            favorites_of(1)
        monkeypatch.undo()

        with engine(site).connect() as connection:  # the pool's most recently returned one
            assert connection.connection.driver_connection.autocommit is False
        assert favorites_of(1) == []


def test_disposing_the_engine_closes_the_read_connection_and_the_next_read_opens_one(app):
    from favsync import favorites_of

    with app.app_context():
        favorites_of(1)
        before = read_connection(app)
        engine(app).dispose()  # an app's shutdown; a lost connection disposes it too

        assert before.closed and read_connection(app) is None
        assert favorites_of(1) == []
        assert read_connection(app) is not before and not read_connection(app).closed


def test_a_read_connection_is_kept_no_longer_than_pool_recycle(make_app):
    from favsync import favorites_of

    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_recycle": 3600})
    aged = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_recycle": 0})  # older than 0 s: renewed
    for each in (app, aged):
        with each.app_context():
            favorites_of(1)
            first = read_connection(each)
            assert favorites_of(1) == []
            kept = read_connection(each) is first
            assert kept is (each is app) and first.closed is not kept


def test_a_forked_process_reads_on_its_own_connection_and_leaves_its_parents_open(app):
    from favsync import favorites_of

    with app.app_context():
        favorites_of(1)
        parents = read_connection(app)
        pid = os.fork()
        if pid == 0:  # the child: its first read connects anew; the parent's is let go
            try:
                favorites_of(1)
                mine = read_connection(app)
                os._exit(0 if mine is not parents and not parents.closed else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)

        assert os.waitstatus_to_exitcode(status) == 0
        assert favorites_of(1) == [] and read_connection(app) is parents  # still the parent's, alive


def test_a_write_that_fails_midway_leaves_no_connection_in_autocommit_or_a_transaction(app, monkeypatch):
    from favsync import database, favorites_of
    from favsync.models import Client
    from favsync.sync import DeviceList, merge_favorites

    def device(*ids):
        return DeviceList(favorites=list(ids), removed=[], base_version=None, session_id=None)

    def interrupted(self, values):
        if "changed_rows" in (values or {}):  # the write's, inside its pipeline
            raise RuntimeError("interrupted after BEGIN and the lock were queued")
        return original(self, values)

    original = database._Compiled.params
    with app.app_context():
        client_id = Client.find_or_create(1, "midway@example.com").id
        database.session().commit()
        merge_favorites(client_id, device("A1"), 500)
        monkeypatch.setattr(database._Compiled, "params", interrupted)
        with pytest.raises(RuntimeError, match="interrupted"):
            merge_favorites(client_id, device("A1", "B2"), 500)
        monkeypatch.undo()

        engine = app.extensions["favsync"].db.engine
        with engine.connect() as connection:  # the pool's most recently returned one
            driver = connection.connection.driver_connection
            assert driver.autocommit is False
            assert driver.info.transaction_status.name == "IDLE"
        assert favorites_of(client_id) == ["A1"]
        assert merge_favorites(client_id, device("A1", "B2"), 500).favorites == ["A1", "B2"]


def test_reads_are_planned_once_per_connection_not_on_every_run(client, headers, app):
    sync(client, headers, ["A1", "B2"])
    for _ in range(8):  # psycopg prepares a statement on its fifth run on a connection
        assert client.get(API, headers=headers).json["favorites"] == ["A1", "B2"]

    # The reads ran on this thread's own read connection (prepared statements are its own).
    connection = read_connection(app)
    plans = connection.execute(
        "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements").fetchall()
    assert connection.execute("SHOW plan_cache_mode").fetchone()[0] == "force_generic_plan"
    read = [plan for plan in plans if "favsync_favorites" in plan[0]]
    # The read's plan is made once and reused, never made anew for each run's values.
    assert read and all(custom == 0 and generic >= 3 for _, generic, custom in read), plans

"""Versioned favourites: three-way sync from a base version, tombstones, ETag and ?since."""
import contextlib
from datetime import timedelta

import flask_migrate
import pytest
import sqlalchemy as sa

from favsync import create_app, favorites_changed
from favsync.config import ConfigError
from favsync.database import session, utcnow
from favsync.models import Client, Favorite, SyncSession

from conftest import API, MIGRATIONS, Auth, base_config
from test_favorites import count_statements

LAPTOP_SESSION = "6f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"


class Device:
    """One browser of the visitor: its list, and the version it last received."""

    def __init__(self, client, headers, session_id=None):
        self.client = client
        self.headers = dict(headers)
        if session_id is not None:
            self.headers["X-Session-ID"] = session_id
        self.favorites = []
        self.version = None

    def sync(self, favorites=None, *, base=True, **extra):
        body = {"favorites": self.favorites if favorites is None else favorites, **extra}
        if base and self.version is not None:
            body["base_version"] = self.version
        response = self.client.post(f"{API}/sync", json=body, headers=self.headers)
        assert response.status_code == 200, response.json
        self.favorites, self.version = response.json["favorites"], response.json["version"]
        return response.json

    def delete(self, listing_id):
        response = self.client.delete(f"{API}/{listing_id}", headers=self.headers)
        assert response.status_code == 200, response.json
        self.favorites, self.version = response.json["favorites"], response.json["version"]
        return response.json

    def get(self, headers=None, **kwargs):
        return self.client.get(API, headers={**self.headers, **(headers or {})}, **kwargs)


@pytest.fixture
def headers(auth):
    return auth.headers("visitor@example.com")


@pytest.fixture
def phone(client, headers):
    return Device(client, headers)


@pytest.fixture
def laptop(client, headers):
    return Device(client, headers)


def stored(app):
    with app.app_context():
        rows = session().execute(
            sa.select(Favorite.listing_id, Favorite.removed_at.is_(None)).order_by(Favorite.id)
        ).all()
    return {listing_id for listing_id, live in rows if live}


# --- versions on every answer ---------------------------------------------


def test_every_change_gives_a_new_version_and_every_answer_says_which(phone, auth):
    assert phone.get().json == {"success": True, "favorites": [], "version": 0}
    assert phone.sync(["A1", "B2"]) == {
        "success": True, "favorites": ["A1", "B2"], "version": 1, "merge": "union"}
    assert phone.sync(["A1"], base=False)["version"] == 1  # nothing changed
    assert phone.delete("A1") == {"success": True, "favorites": ["B2"], "version": 2}
    assert phone.delete("A1")["version"] == 2  # not there: nothing changed
    assert phone.sync(["C3"], base=False)["version"] == 3
    assert phone.get().json == {"success": True, "favorites": ["B2", "C3"], "version": 3}
    login = auth.login("visitor@example.com")
    assert (login["favorites"], login["version"]) == (["B2", "C3"], 3)


def test_a_refresh_answer_carries_no_favourites_and_no_version(client, auth):
    auth.login()

    assert set(client.post(f"{API}/token/refresh", json={}).json) == {
        "success", "client_id", "email", "auth_token"}


# --- the stale laptop -------------------------------------------------------


def test_a_stale_laptop_with_its_base_version_does_not_bring_a_deletion_back(phone, laptop, app):
    laptop.sync(["98970014", "98970015", "98970171"])
    phone.sync([])  # the phone now holds the same list
    phone.delete("98970171")

    answer = laptop.sync()  # its old list, with the version it last received

    assert answer["merge"] == "three-way"
    assert answer["favorites"] == ["98970014", "98970015"]
    assert phone.get().json["favorites"] == ["98970014", "98970015"]
    assert stored(app) == {"98970014", "98970015"}


def test_a_stale_laptop_with_only_its_session_id_does_not_bring_a_deletion_back(
    client, auth, app
):
    login = auth.login("visitor@example.com", headers={"X-Session-ID": LAPTOP_SESSION})
    bearer = {"Authorization": f"Bearer {login['auth_token']}"}
    laptop = Device(client, bearer, session_id=LAPTOP_SESSION)
    phone = Device(client, bearer)
    # A seed-000 front end: it never sends base_version, only its session id.
    assert laptop.sync(["98970014", "98970015", "98970171"], base=False)["merge"] == "union"
    phone.delete("98970171")

    answer = laptop.sync(["98970014", "98970015", "98970171"], base=False)

    assert answer["merge"] == "three-way"
    assert answer["favorites"] == ["98970014", "98970015"]
    assert stored(app) == {"98970014", "98970015"}


def test_a_seed_000_client_without_base_or_session_still_gets_the_union(phone, laptop, app):
    laptop.sync(["98970014", "98970171"])
    phone.delete("98970171")

    answer = laptop.sync(["98970014", "98970171"], base=False)

    assert answer["merge"] == "union"
    assert answer["favorites"] == ["98970014", "98970171"]
    assert stored(app) == {"98970014", "98970171"}


def test_the_first_sync_after_a_login_is_a_union_even_for_a_known_session(client, auth, app):
    login = auth.login("visitor@example.com", headers={"X-Session-ID": LAPTOP_SESSION})
    laptop = Device(client, {"Authorization": f"Bearer {login['auth_token']}"}, LAPTOP_SESSION)
    laptop.sync(["A1", "B2"], base=False)

    # Logged out and in again; the front end posts its (now empty) localStorage list.
    login = auth.login("visitor@example.com", headers={"X-Session-ID": LAPTOP_SESSION})
    laptop = Device(client, {"Authorization": f"Bearer {login['auth_token']}"}, LAPTOP_SESSION)
    answer = laptop.sync(["C3"], base=False)

    assert answer["merge"] == "union"
    assert answer["favorites"] == ["A1", "B2", "C3"]


def test_a_login_answer_does_not_set_the_sessions_base(client, auth, app):
    auth.login("visitor@example.com", headers={"X-Session-ID": LAPTOP_SESSION})

    with app.app_context():
        assert session().scalar(sa.select(sa.func.count()).select_from(SyncSession)) == 0


# --- the three-way rules ----------------------------------------------------


def test_an_id_hearted_since_the_base_is_added_even_if_another_device_removed_it(phone, laptop):
    laptop.sync(["A1"])
    phone.sync(["B2"], base=False)
    phone.delete("B2")  # the phone hearted and removed B2 after the laptop's base

    answer = laptop.sync(["A1", "B2"])  # the laptop hearted B2 meanwhile: add wins

    assert answer["favorites"] == ["A1", "B2"]


def test_an_id_un_hearted_and_hearted_again_stays_though_another_device_removed_it(phone, laptop):
    laptop.sync(["A1", "B2"])
    phone.delete("B2")

    answer = laptop.sync(["A1", "B2"], removed=["B2"])

    assert answer["favorites"] == ["A1", "B2"]


def test_an_id_dropped_by_the_device_is_removed(laptop):
    laptop.sync(["A1", "B2", "C3"])

    assert laptop.sync(["A1", "C3"])["favorites"] == ["A1", "C3"]


def test_an_id_listed_in_removed_is_removed(laptop):
    laptop.sync(["A1", "B2"])

    assert laptop.sync(["A1"], removed=["B2"])["favorites"] == ["A1"]


def test_a_removal_does_not_undo_a_heart_made_after_the_base(phone, laptop):
    laptop.sync(["A1", "B2"])
    phone.delete("B2")
    phone.sync(["B2"], base=False)  # hearted again on the phone, after the laptop's base

    answer = laptop.sync(["A1"])  # the laptop drops B2, having seen only the old heart

    assert answer["favorites"] == ["A1", "B2"]


def test_a_heart_made_concurrently_with_anothers_survives_the_removal_of_the_other(client, headers):
    phone, laptop, tablet = (Device(client, headers) for _ in range(3))
    for device in (phone, laptop, tablet):
        device.sync([])
    phone.sync(["A1"])
    tablet.sync()  # the tablet sees the phone's heart
    laptop.sync(["A1"])  # the laptop, not having seen it, hearts A1 too

    answer = tablet.sync([])  # the tablet un-hearts the heart it saw

    assert answer["favorites"] == ["A1"]  # the laptop's heart was never seen: it stays


def test_what_other_devices_added_after_the_base_stays(phone, laptop):
    laptop.sync(["A1"])
    phone.sync(["B2", "C3"], base=False)

    assert laptop.sync(["A1"])["favorites"] == ["A1", "B2", "C3"]


def test_removed_ids_the_device_never_had_leave_others_hearts_alone(phone, laptop):
    laptop.sync(["A1"])
    phone.sync(["B2"], base=False)

    assert laptop.sync(["A1"], removed=["B2"])["favorites"] == ["A1", "B2"]


def test_after_two_rounds_of_syncs_every_device_holds_the_same_list(client, headers):
    devices = [Device(client, headers) for _ in range(3)]
    for device, ids in zip(devices, (["A1", "B2"], ["B2", "C3"], ["D4"]), strict=True):
        device.sync(ids)
    devices[0].favorites = ["A1", "C3"]  # dropped B2 and D4, hearted C3
    devices[2].favorites.remove("A1")

    for _ in range(2):
        for device in devices:
            device.sync()

    # C3, hearted again on the first device, is the most recent heart.
    assert [device.favorites for device in devices] == [["D4", "C3"]] * 3


@pytest.mark.parametrize("offset", [1, 100])
def test_a_base_from_the_future_falls_back_to_the_union(laptop, offset):
    laptop.sync(["A1", "B2"])

    answer = laptop.sync(["A1"], base_version=laptop.version + offset, base=False)

    assert answer["merge"] == "union"
    assert answer["favorites"] == ["A1", "B2"]


def test_a_base_older_than_the_kept_tombstones_falls_back_to_the_union(phone, laptop, app, runner):
    laptop.sync(["A1", "B2"])
    old_base = laptop.version
    phone.sync([])
    phone.delete("B2")
    forget_tombstones(app, days=91)
    assert runner.invoke(args=["favsync", "purge"]).output.startswith("purged 0 magic links, 0 refresh tokens, 1 tombstones")

    answer = laptop.sync(["A1", "B2"], base_version=old_base, base=False)

    assert answer["merge"] == "union"
    assert answer["favorites"] == ["A1", "B2"]  # a tombstone older than 90 days is forgotten


def test_a_three_way_merge_signals_what_really_changed(phone, laptop, app):
    laptop.sync(["A1", "B2"])
    phone.sync(["C3"], base=False)
    received = []

    def on_change(sender, **extra):
        received.append(extra)

    with favorites_changed.connected_to(on_change, app):
        laptop.sync(["A1", "D4", "C3"])  # adds D4, drops B2; C3 already there (not signalled)
        laptop.sync()  # nothing changes

    assert received == [{"client_id": received[0]["client_id"], "added": ["D4"], "removed": ["B2"]}]


def test_the_answer_lists_favourites_in_the_order_a_later_get_does(phone, laptop):
    laptop.sync(["A1", "B2", "C3"])
    phone.sync([])
    phone.delete("B2")

    answer = laptop.sync(["Z9", "A1", "C3", "B2"], removed=["A1"], base=False)
    again = laptop.sync(["Y8", "B2", "A1"], removed=["A1"])

    # A union: B2 hearted again and Z9 added, after what was there (an old row before a new one).
    assert answer["favorites"] == ["A1", "C3", "B2", "Z9"]
    assert again["favorites"] == ["B2", "A1", "Y8"]  # A1 re-hearted; C3, Z9 dropped
    assert phone.get().json["favorites"] == again["favorites"]


def test_a_three_way_sync_over_the_limit_is_rejected_whole(config, inbox):
    config["FAVSYNC_MAX_FAVORITES"] = 3
    limited = create_app(config)
    client = limited.test_client()
    device = Device(client, Auth(client, inbox).headers())
    device.sync(["A1", "B2"])

    response = client.post(f"{API}/sync", headers=device.headers,
                           json={"favorites": ["A1", "C3", "D4", "E5"], "base_version": device.version})

    assert response.status_code == 422
    assert response.json["error"]["code"] == "too_many_favorites"
    assert device.sync(["A1", "C3", "D4"])["favorites"] == ["A1", "C3", "D4"]  # B2 dropped: fits


# --- validation ------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, "1", 1.5, True, [], {}, 2**63])
def test_base_version_must_be_a_version(phone, value):
    response = phone.client.post(f"{API}/sync", headers=phone.headers,
                                 json={"favorites": [], "base_version": value})

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == ["body", "base_version"]


def test_a_null_base_version_is_no_base(phone):
    phone.sync(["A1"])

    assert phone.sync(["B2"], base_version=None, base=False)["merge"] == "union"


@pytest.mark.parametrize(
    ("removed", "loc"),
    [("A1", ["body", "removed"]), (None, ["body", "removed"]), (["ok", "bad id"], ["body", "removed", 1])],
)
def test_removed_must_be_a_list_of_listing_ids(phone, removed, loc):
    response = phone.client.post(f"{API}/sync", headers=phone.headers,
                                 json={"favorites": [], "base_version": 0, "removed": removed})

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == loc


def test_removed_may_hold_at_most_the_limit(phone):
    response = phone.client.post(f"{API}/sync", headers=phone.headers,
                                 json={"favorites": [], "removed": [f"L{i}" for i in range(501)]})

    assert response.status_code == 422


@pytest.mark.parametrize("query", ["since=-1", "since=abc", "since=1.5", "since=", "since=9223372036854775808", "other=1"])
def test_a_listing_refuses_a_bad_query(phone, query):
    response = phone.client.get(f"{API}?{query}", headers=phone.headers)

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"][0] == "query"


@pytest.mark.parametrize("days", [0, -5, "zero"])
def test_the_tombstone_days_must_be_positive(config, days):
    config["FAVSYNC_TOMBSTONE_DAYS"] = days

    with pytest.raises(ConfigError, match="FAVSYNC_TOMBSTONE_DAYS"):
        create_app(config)


# --- nothing changed costs nothing -----------------------------------------


def test_a_repeated_get_with_the_etag_answers_304(phone, app):
    phone.sync(["A1"])
    first = phone.get()
    etag = first.headers["ETag"]

    with count_statements(app) as statements:
        again = phone.get(headers={"If-None-Match": etag})

    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert len(statements) == 1  # the token's check and the version
    assert first.headers["Cache-Control"] == "private, no-cache"


def test_the_etag_changes_with_the_favourites(phone):
    phone.sync(["A1"])
    etag = phone.get().headers["ETag"]
    phone.sync(["A1", "B2"])

    response = phone.get(headers={"If-None-Match": etag})

    assert response.status_code == 200
    assert response.json["favorites"] == ["A1", "B2"]
    assert response.headers["ETag"] != etag


@pytest.mark.parametrize("header", ['W/"{etag}"', '"other", "{etag}"', "*"])
def test_if_none_match_compares_weakly_and_accepts_lists(phone, header):
    etag = phone.get().headers["ETag"].strip('"')

    response = phone.get(headers={"If-None-Match": header.format(etag=etag)})

    assert response.status_code == 304


@pytest.mark.parametrize("header", ['W/""', '""', ",", 'W/"favsync--1-0"', '"favsync-x-1"'])
def test_an_empty_or_foreign_if_none_match_gets_the_list(phone, header):
    phone.sync(["A1"])

    response = phone.get(headers={"If-None-Match": header})

    assert response.status_code == 200 and response.json["favorites"] == ["A1"]


def test_another_clients_etag_does_not_match(phone, client, auth):
    etag = phone.get().headers["ETag"]
    other = auth.headers("other@example.com")

    assert client.get(API, headers={**other, "If-None-Match": etag}).status_code == 200


def test_since_answers_what_changed(phone, laptop):
    laptop.sync(["A1", "B2", "C3"])
    base = laptop.version
    phone.sync([])
    phone.delete("B2")
    phone.sync(["D4"], base=False)

    changes = laptop.get(query_string={"since": base}).json
    nothing = laptop.get(query_string={"since": phone.version}).json

    assert changes == {"success": True, "version": phone.version, "added": ["D4"], "removed": ["B2"]}
    assert nothing == {"success": True, "version": phone.version, "added": [], "removed": []}


@pytest.mark.parametrize("future", [True, False])
def test_since_beyond_reach_answers_the_whole_list(phone, app, runner, future):
    phone.sync(["A1", "B2"])
    phone.delete("A1")
    forget_tombstones(app, days=91)
    runner.invoke(args=["favsync", "purge"])
    since = phone.version + 5 if future else 1

    answer = phone.get(query_string={"since": since}).json

    assert answer == {"success": True, "favorites": ["B2"], "version": phone.version, "reset": True}


def test_each_read_costs_one_statement_authentication_included(phone, app):
    phone.sync([f"L{i}" for i in range(300)])
    phone.delete("L7")
    with count_statements(app) as listing:
        phone.get()
    with count_statements(app) as changes:
        phone.get(query_string={"since": 1})
    with count_statements(app) as reset:
        phone.get(query_string={"since": 99})

    assert len(listing) == len(changes) == len(reset) == 1


def test_a_three_way_sync_costs_the_same_for_10_and_500_ids(client, auth, app):
    login = auth.login("visitor@example.com", headers={"X-Session-ID": LAPTOP_SESSION})
    laptop = Device(client, {"Authorization": f"Bearer {login['auth_token']}"}, LAPTOP_SESSION)
    laptop.sync([f"S{i}" for i in range(10)])
    with count_statements(app) as small:
        laptop.sync([f"S{i}" for i in range(5)] + ["N1"])  # adds and removes
    laptop.sync([f"L{i}" for i in range(500)])
    with count_statements(app) as large:
        laptop.sync([f"L{i}" for i in range(250)] + [f"M{i}" for i in range(250)])
    with count_statements(app) as unchanged:
        laptop.sync()

    # the rows, read with the token's check; the lock; one upsert of the changed rows;
    # the session's base. A sync that changes nothing only reads.
    assert len(small) == len(large) == 4
    assert len(unchanged) == 1


def test_a_login_with_a_session_costs_one_more_statement(auth, inbox, client, app):
    auth.request_link("counted@example.com", headers={"X-Session-ID": LAPTOP_SESSION})
    path = "/" + inbox.link_for("counted@example.com").split("/", 3)[3]
    with count_statements(app) as verifying:
        assert client.get(path).status_code == 200

    assert len(verifying) == 6  # test_favorites' five, and forgetting the session's base


# --- tombstones -------------------------------------------------------------


def test_a_tombstone_is_no_favourite_for_the_host_either(phone, app):
    from favsync.sync import listing_ids

    phone.sync(["A1", "B2"])
    phone.delete("A1")

    with app.app_context():
        assert listing_ids(session().scalar(sa.select(Client.id))) == ["B2"]


def forget_tombstones(app, days):
    """Move every tombstone's removal `days` into the past."""
    with app.app_context():
        session().execute(
            sa.update(Favorite)
            .where(Favorite.removed_at.is_not(None))
            .values(removed_at=utcnow() - timedelta(days=days))
        )
        session().execute(sa.update(SyncSession).values(updated_at=utcnow() - timedelta(days=days)))
        session().commit()


def test_purge_deletes_tombstones_older_than_the_setting_and_moves_the_horizon(
    phone, app, runner
):
    phone.sync(["A1", "B2", "C3"])
    phone.delete("A1")
    phone.delete("B2")
    purged_through = phone.version
    forget_tombstones(app, days=91)
    phone.delete("C3")  # recent: kept

    result = runner.invoke(args=["favsync", "purge"])

    assert result.output.strip() == (
        "purged 0 magic links, 0 refresh tokens, 2 tombstones, 0 sync sessions and 0 outbox messages")
    with app.app_context():
        rows = session().execute(sa.select(Favorite.listing_id, Favorite.removed_at)).all()
        horizon = session().scalar(sa.select(Client.favorites_horizon))
    assert [(listing_id, removed_at is not None) for listing_id, removed_at in rows] == [("C3", True)]
    assert horizon == purged_through
    assert phone.get().json["version"] == phone.version  # the version never goes back


def test_the_tombstone_days_are_a_setting(config, inbox):
    config["FAVSYNC_TOMBSTONE_DAYS"] = 10
    short = create_app(config)
    device = Device(short.test_client(), Auth(short.test_client(), inbox).headers())
    device.sync(["A1"])
    device.delete("A1")
    forget_tombstones(short, days=11)

    output = short.test_cli_runner().invoke(args=["favsync", "purge"]).output

    assert "1 tombstones" in output


def test_purge_forgets_sessions_that_did_not_sync_for_the_tombstone_days(client, auth, app, runner):
    login = auth.login("visitor@example.com", headers={"X-Session-ID": LAPTOP_SESSION})
    Device(client, {"Authorization": f"Bearer {login['auth_token']}"}, LAPTOP_SESSION).sync(["A1"])
    forget_tombstones(app, days=91)

    assert runner.invoke(args=["favsync", "purge"]).output.strip().endswith("1 sync sessions and 0 outbox messages")


def test_history_is_trimmed_at_the_horizon():
    from favsync.sync import present_at, toggled

    assert toggled("0", 5, horizon=0) == "0 5"
    assert toggled("1 3 5 6", 9, horizon=4) == "5 6 9"  # 1-3: before the horizon, dropped
    assert toggled("1 3 4", 9, horizon=4) == "4 9"  # present at the horizon: one toggle kept
    assert [present_at("2 5 8", v) for v in range(10)] == [
        False, False, True, True, True, False, False, False, True, True]


# --- the migration ----------------------------------------------------------


def test_upgrading_keeps_favourites_and_downgrading_drops_tombstones(backend):
    with backend.scratch_database() as database_uri:
        app = create_app(base_config(database_uri, port=25))
        with app.app_context():
            flask_migrate.upgrade(directory=MIGRATIONS, revision="0002")
            db = session()
            db.execute(sa.text("INSERT INTO favsync_clients (brokerage_id, email) VALUES (1, 'a@example.com')"))
            db.execute(sa.text("INSERT INTO favsync_favorites (client_id, listing_id) VALUES (1, 'A1'), (1, 'B2')"))
            db.commit()
            flask_migrate.upgrade(directory=MIGRATIONS)
            rows = db.execute(sa.text(
                "SELECT listing_id, version, added_version, removed_at, history FROM favsync_favorites ORDER BY id"
            )).all()
            db.execute(sa.text(
                "UPDATE favsync_favorites SET removed_at = CURRENT_TIMESTAMP, version = 1 WHERE listing_id = 'B2'"
            ))
            db.commit()
            flask_migrate.downgrade(directory=MIGRATIONS, revision="0002")
            left = db.scalars(sa.text("SELECT listing_id FROM favsync_favorites")).all()
            db.close()
            app.extensions["favsync"].db.engine.dispose()

    assert [tuple(row) for row in rows] == [("A1", 0, 0, None, "0"), ("B2", 0, 0, None, "0")]
    assert left == ["A1"]


# --- a change between a sync's read and its lock ------------------------------------


@contextlib.contextmanager
def just_before_the_lock(app, change):
    """Run `change` (another device's request) once, between a sync's read and its lock."""
    from conftest import engine

    pending = [change]

    def before(conn, cursor, statement, *args):
        if pending and ("pg_advisory_xact_lock" in statement or "BEGIN IMMEDIATE" in statement):
            pending.pop()()

    sa.event.listen(engine(app), "before_cursor_execute", before)
    try:
        yield
    finally:
        sa.event.remove(engine(app), "before_cursor_execute", before)


@pytest.mark.parametrize("base", [False, True])
def test_a_change_committed_between_a_syncs_read_and_its_lock_is_merged_not_overwritten(
    app, phone, laptop, base
):
    phone.sync(["A1"])
    laptop.sync()
    with just_before_the_lock(app, lambda: laptop.sync(["A1", "B2"])):
        answer = phone.sync(["A1", "C3"], base=base)

    # The phone's plan from version 1 was stale: planned again under the lock, its
    # change gets a version of its own, after the laptop's.
    assert (answer["favorites"], answer["version"]) == (["A1", "B2", "C3"], 3)
    since_laptop = phone.get(query_string={"since": 2}).json
    assert (since_laptop["added"], since_laptop["removed"]) == (["C3"], [])


def test_a_removal_racing_a_sync_between_its_read_and_lock_keeps_both(app, phone, laptop):
    phone.sync(["A1", "B2"])
    laptop.sync()
    with just_before_the_lock(app, lambda: laptop.sync(["A1", "B2", "C3"])):
        answer = phone.delete("A1")

    assert (answer["favorites"], answer["version"]) == (["B2", "C3"], 3)


def test_a_favourite_is_dated_from_when_it_last_became_one(app, phone):
    from conftest import rows

    def hearted_at():
        return rows(app, sa.select(Favorite.created_at).where(Favorite.listing_id == "A1"))[0]

    phone.sync(["A1"])
    first = hearted_at()
    phone.sync(["A1", "B2"], removed=["A1"])  # un-hearted and hearted again on the device
    rehearted = hearted_at()
    phone.delete("A1")
    removed = hearted_at()
    phone.sync(["A1", "B2"], base=False)
    again = hearted_at()

    assert first == rehearted == removed < again


def test_a_session_that_keeps_syncing_unchanged_is_not_forgotten_by_purge(client, auth, app, runner):
    # A sync that changes nothing writes nothing, but a session's base is purged
    # after the tombstone days unwritten: it must be written again now and then.
    login = auth.login("visitor@example.com", headers={"X-Session-ID": LAPTOP_SESSION})
    laptop = Device(client, {"Authorization": f"Bearer {login['auth_token']}"}, LAPTOP_SESSION)
    laptop.sync(["A1", "B2"], base=False)
    with app.app_context():
        session().execute(sa.update(SyncSession).values(updated_at=utcnow() - timedelta(days=91)))
        session().commit()

    laptop.sync(["A1", "B2"], base=False)  # nothing to change, every day
    runner.invoke(args=["favsync", "purge"])
    answer = laptop.sync(["A1"], base=False)  # the laptop dropped B2

    assert (answer["merge"], answer["favorites"]) == ("three-way", ["A1"])


@pytest.mark.parametrize("query", [{"since": 2**31}, {"since": 2**40}])
def test_a_version_beyond_any_of_ours_is_a_clear_400(phone, query):
    response = phone.get(query_string=query)

    assert response.status_code == 400
    assert response.json["error"]["code"] == "validation_error"


def test_an_etag_naming_a_version_beyond_any_of_ours_is_not_ours(phone):
    phone.sync(["A1"])
    tag = phone.get().headers["ETag"].strip('"').rsplit("-", 1)[0]

    response = phone.get(headers={"If-None-Match": f'"{tag}-999999999999999999"'})

    assert response.status_code == 200 and response.json["favorites"] == ["A1"]

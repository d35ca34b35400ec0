"""A visitor's favourites: list, sync (a union merge), delete, the limit, and who may touch them."""
import base64
import time

import jwt
import pytest
import sqlalchemy as sa

from favsync import favorites_changed

from conftest import (
    API, VISITOR, Auth, Client, Favorite, MagicLink, bearer, count_statements, database, rows,
)

SECRET = "test-secret-key-that-is-long-enough-for-hs256"


@pytest.fixture
def headers(auth):
    return auth.headers()


def sync(client, headers, ids):
    return client.post(f"{API}/sync", json={"favorites": ids}, headers=headers)


def stored(app):
    return rows(app, sa.select(Favorite.listing_id).order_by(Favorite.id))


def test_a_new_client_has_no_favorites(client, headers):
    response = client.get(API, headers=headers)

    assert response.status_code == 200
    assert response.json == {"success": True, "favorites": [], "version": 0}


def test_sync_union_merges_and_returns_the_result(client, headers):
    first = sync(client, headers, ["98970014", "98970015", "98970171"])
    second = sync(client, headers, ["98970015", "C9231328", "98970014", "98970200"])

    assert first.status_code == second.status_code == 200
    assert first.json == {"success": True, "favorites": ["98970014", "98970015", "98970171"],
                          "version": 1, "merge": "union"}
    assert second.json["favorites"] == ["98970014", "98970015", "98970171", "C9231328", "98970200"]
    assert client.get(API, headers=headers).json["favorites"] == [
        "98970014", "98970015", "98970171", "C9231328", "98970200"]


def test_sync_is_idempotent_and_folds_duplicates(client, headers, app):
    ids = ["A1", "B2", "A1", "C3", "B2"]
    first = sync(client, headers, ids)
    second = sync(client, headers, ids)

    assert first.json["favorites"] == second.json["favorites"] == ["A1", "B2", "C3"]
    assert stored(app) == ["A1", "B2", "C3"]


def test_an_empty_sync_returns_what_is_stored(client, headers):
    sync(client, headers, ["A1"])

    assert sync(client, headers, []).json["favorites"] == ["A1"]


def test_the_next_login_returns_the_stored_favorites(client, headers, auth):
    sync(client, headers, ["98970014", "98970015"])

    assert auth.login()["favorites"] == ["98970014", "98970015"]


def test_clients_do_not_see_each_others_favorites(client, headers, auth):
    sync(client, headers, ["A1"])
    other = auth.headers("other@example.com")

    assert client.get(API, headers=other).json["favorites"] == []


def test_delete_removes_one_favorite(client, headers):
    sync(client, headers, ["A1", "B2", "C3"])

    response = client.delete(f"{API}/B2", headers=headers)

    assert response.status_code == 200
    assert response.json == {"success": True, "favorites": ["A1", "C3"], "version": 2}


def test_deleting_a_missing_favorite_also_succeeds(client, headers):
    sync(client, headers, ["A1"])

    response = client.delete(f"{API}/Z9", headers=headers)

    assert response.status_code == 200
    assert response.json["favorites"] == ["A1"]


def test_changes_are_signalled(client, auth, app):
    login = auth.login()
    headers = bearer(login["auth_token"])
    received = []

    def on_change(sender, **extra):
        received.append(extra)

    with favorites_changed.connected_to(on_change, app):
        sync(client, headers, ["A1", "B2"])
        sync(client, headers, ["A1"])
        client.delete(f"{API}/A1", headers=headers)
        client.delete(f"{API}/A1", headers=headers)

    assert received == [
        {"client_id": login["client_id"], "added": ["A1", "B2"], "removed": []},
        {"client_id": login["client_id"], "added": [], "removed": ["A1"]},
    ]


@pytest.mark.parametrize(
    "listing_id",
    ["", "a" * 51, "has space", "semi;colon", "slash/", "ünïcode", 42, None, ["A1"], {"id": "A1"},
     ".", "..", "...", "." * 50],
)
def test_sync_rejects_an_invalid_listing_id_and_changes_nothing(client, headers, app, listing_id):
    sync(client, headers, ["A1"])

    response = sync(client, headers, ["B2", listing_id])

    assert response.status_code == 400
    assert response.json["error"]["code"] == "validation_error"
    assert response.json["error"]["details"][0]["loc"] == ["body", "favorites", 1]
    assert stored(app) == ["A1"]


@pytest.mark.parametrize("body", [{}, {"favorites": "A1"}, {"favorites": None}, {"favorites": {"A1": 1}}])
def test_sync_needs_a_list(client, headers, body):
    response = client.post(f"{API}/sync", json=body, headers=headers)

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == ["body", "favorites"]


def test_accepts_ids_of_every_allowed_shape(client, headers):
    ids = ["98970014", "C9231328", "a", "x" * 50, "W-1_2.3", ".a", "a..", "_", "-"]

    assert sync(client, headers, ids).json["favorites"] == ids


@pytest.mark.parametrize("listing_id", ["a" * 51, "bad%20id", "bad!", "...", "%2E%2E"])
def test_delete_rejects_an_invalid_listing_id(client, headers, listing_id):
    response = client.delete(f"{API}/{listing_id}", headers=headers)

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == ["path", "listing_id"]


@pytest.fixture
def small_limit(make_app, inbox):
    app = make_app(FAVSYNC_MAX_FAVORITES=5)
    client = app.test_client()
    return app, client, Auth(client, inbox).headers()


def test_a_sync_over_the_limit_is_rejected_whole(small_limit):
    app, client, headers = small_limit
    sync(client, headers, ["A1", "B2", "C3"])

    response = sync(client, headers, ["D4", "E5", "F6", "A1"])

    assert response.status_code == 422
    assert response.json["error"]["code"] == "too_many_favorites"
    assert stored(app) == ["A1", "B2", "C3"]
    assert sync(client, headers, ["D4", "E5", "A1", "A1"]).status_code == 200


def test_the_default_limit_is_500(client, headers, app):
    ids = [f"L{i}" for i in range(500)]

    assert len(sync(client, headers, ids).json["favorites"]) == 500
    assert sync(client, headers, ["one-more"]).status_code == 422
    assert len(stored(app)) == 500


def test_sync_uses_the_same_number_of_statements_for_10_and_500_ids(client, headers, app):
    with count_statements(app) as small:
        sync(client, headers, [f"S{i}" for i in range(10)])
    with count_statements(app) as large:
        sync(client, headers, [f"L{i}" for i in range(490)])

    # the list, read with the token's check (all held?); the rows the merge plans from;
    # the lock; one upsert of the new ones
    assert len(small) == len(large) == 4


def test_list_and_delete_statement_counts(client, headers, app):
    sync(client, headers, ["A1", "B2"])
    with count_statements(app) as listing:
        client.get(API, headers=headers)
    with count_statements(app) as deleting:
        client.delete(f"{API}/A1", headers=headers)

    assert len(listing) == 1  # the token's check, the version and the ids, in one
    assert len(deleting) == 3  # that read, the lock, the tombstone


# --- authentication ------------------------------------------------------


def token(**overrides):
    now = int(time.time())
    claims = {"client_id": 1, "brokerage_id": 1, "email": VISITOR,
              "iat": now, "exp": now + 3600, "type": "favorites_auth", "sid": "no-such-session"}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")


def none_alg_token():
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(
        b'{"client_id":1,"brokerage_id":1,"email":"visitor@example.com",'
        b'"iat":1,"exp":99999999999,"type":"favorites_auth"}'
    ).decode()
    return f"{header}.{payload}."


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not.a.jwt",
        "Bearer " + token(exp=int(time.time()) - 10),
        "Bearer " + token(type="refresh"),
        "Bearer " + token(type=None),
        "Bearer " + token(iat=None),
        "Bearer " + token(client_id="1"),
        "Bearer " + token(client_id=999),
        "Bearer " + token(brokerage_id=2),
        "Bearer " + token(email="someone@else.example"),
        "Bearer " + jwt.encode({"client_id": 1}, "wrong-secret-but-long-enough-for-hs256-ok"),
        "Bearer " + none_alg_token(),
        "Bearer " + token(client_id=2**80),
        "Bearer " + token(iat=-(2**70)),
        "Bearer " + token(sid=None),
        "Bearer " + token(sid=5),
        "Bearer " + base64.urlsafe_b64encode(b"[" * 3000).rstrip(b"=").decode() + ".e30.sig",
        "Bearer " + base64.urlsafe_b64encode(b"[1]").rstrip(b"=").decode() + ".e30.sig",
        "Bearer %%%.e30.sig",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"), [("get", API), ("post", f"{API}/sync"), ("delete", f"{API}/A1")]
)
def test_protected_endpoints_refuse_a_bad_token(auth, client, app, authorization, method, path):
    auth.login()  # client 1 exists; only the token is wrong
    headers = {} if authorization is None else {"Authorization": authorization}

    response = getattr(client, method)(path, headers=headers, json={"favorites": ["A1"]})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json["error"]["code"] == "unauthorized"
    assert stored(app) == []


def test_a_token_signed_with_the_right_key_by_hand_works(auth, client):
    session = jwt.decode(auth.token(), options={"verify_signature": False})["sid"]

    assert client.get(API, headers=bearer(token(sid=session))).status_code == 200


def test_a_deleted_client_loses_access(client, headers, app):
    with database(app) as session:
        session.execute(sa.delete(Favorite))
        session.execute(sa.update(MagicLink).values(client_id=None))
        session.execute(sa.delete(Client))

    assert client.get(API, headers=headers).status_code == 401


def test_verify_statement_count(auth, inbox, app):
    auth.request_link("counted@example.com")
    link = inbox.link_for("counted@example.com")
    with count_statements(app) as verifying:
        assert auth.follow(link).status_code == 200

    # consume the link, upsert the client, link the session, read favourites, store a refresh token
    assert len(verifying) == 5


def test_a_statements_own_numbers_go_into_its_sql_and_nothing_else_does():
    # database._compiled writes the numbers a statement holds itself (a LIMIT 1) into
    # its SQL for psycopg: never a negative one (after a minus, "--" starts a comment),
    # never a value a caller binds by name.
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql import psycopg

    from favsync.database import _compiled

    table = sa.table("t", sa.column("x", sa.Integer))
    statement = (sa.select(table.c.x)
                 .where(table.c.x > -sa.literal(-5), table.c.x < sa.bindparam("top"))
                 .limit(1))

    compiled = _compiled(statement, psycopg.dialect())

    assert "LIMIT 1::INTEGER" in compiled.sql and "--" not in compiled.sql
    assert "%(top)s" in compiled.sql
    assert sorted(compiled.params({"top": 9}).items()) == sorted({**compiled.fixed, "top": 9}.items())
    assert list(compiled.fixed.values()) == [-5]


def test_statements_are_built_one_thread_at_a_time():
    # Once, two threads of a new gunicorn worker building the favourites read at the
    # same moment got SQL naming the table where it meant its alias: a 500. Every
    # statement builder and the compiler are built_once; a first build waits its turn.
    import threading
    import time

    from favsync import database, models, sync

    building, most = 0, 0
    lock = threading.Lock()

    @database.built_once()
    def build(key):
        nonlocal building, most
        with lock:
            building += 1
            most = max(most, building)
        time.sleep(0.05)
        with lock:
            building -= 1
        return key

    threads = [threading.Thread(target=build, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert most == 1
    assert build(2) == 2 and build.cache_info().hits == 1  # built, then only looked up
    for builder in (database._compiled, sync._read_query, sync._upsert_from_json,
                    sync._keeping_base, models._authenticated_query):
        assert builder.__wrapped__.__code__ is build.__wrapped__.__code__  # built_once's lock

"""Signing keys: one secret, or a key ring rotated without logging anyone out."""
import time

import jwt
import pytest

from favsync import create_app

from conftest import API, PRODUCTION, VISITOR, Auth, ConfigError, bearer, settings

OLD = "old-key-secret-that-is-long-enough-0123456789"
NEW = "new-key-secret-that-is-long-enough-0123456789"


def status_with(app, token):
    """The status of a favourites list read with `token`."""
    return app.test_client().get(API, headers=bearer(token)).status_code


def token_from(app, inbox):
    return Auth(app.test_client(), inbox).token()


def ring(keys, active):
    return {"FAVSYNC_JWT_KEYS": keys, "FAVSYNC_JWT_ACTIVE_KID": active}


def test_a_single_secret_signs_without_a_key_id(app, inbox):
    token = token_from(app, inbox)

    assert "kid" not in jwt.get_unverified_header(token)
    assert status_with(app, token) == 200


def test_tokens_verify_until_their_key_is_removed(make_app, inbox):
    old_token = token_from(make_app(**ring({"2026-10": OLD}, "2026-10")), inbox)
    rotated = make_app(**ring({"2026-10": OLD, "2026-11": NEW}, "2026-11"))
    new_token = token_from(rotated, inbox)
    retired = make_app(**ring({"2026-11": NEW}, "2026-11"))

    assert jwt.get_unverified_header(old_token)["kid"] == "2026-10"
    assert jwt.get_unverified_header(new_token)["kid"] == "2026-11"
    assert status_with(rotated, old_token) == 200
    assert status_with(rotated, new_token) == 200
    assert status_with(retired, new_token) == 200
    assert status_with(retired, old_token) == 401


def test_an_unknown_key_id_is_refused(config, auth, client):
    auth.login()
    now = int(time.time())
    claims = {"client_id": 1, "brokerage_id": 1, "email": VISITOR, "iat": now,
              "exp": now + 60, "type": "favorites_auth"}
    forged = jwt.encode(claims, config["FAVSYNC_SECRET_KEY"], headers={"kid": "made-up"})

    response = client.get(API, headers=bearer(forged))

    assert response.status_code == 401
    assert "key" in response.json["error"]["message"]


def test_unversioned_tokens_verify_only_while_the_old_secret_is_configured(config, make_app, app, inbox):
    legacy = token_from(app, inbox)  # signed with the single secret, no key id

    keeping = make_app(FAVSYNC_JWT_SECRET_KEY=config["FAVSYNC_SECRET_KEY"], **ring({"k1": NEW}, "k1"))
    dropped = make_app(**ring({"k1": NEW}, "k1"))

    assert status_with(keeping, legacy) == 200
    assert status_with(dropped, legacy) == 401


def test_keys_come_from_the_environment_as_json(make_app, monkeypatch):
    monkeypatch.setenv("FAVSYNC_JWT_KEYS", f'{{"k1": "{NEW}"}}')
    monkeypatch.setenv("FAVSYNC_JWT_ACTIVE_KID", "k1")

    read = settings(make_app())

    assert read.jwt_keys == {"k1": NEW} and read.jwt_active_kid == "k1"


@pytest.mark.parametrize(
    "keys", [ring({"k1": "short"}, "k1"), ring({"k1": NEW}, "k2"), ring("not json", "k1")],
)
def test_a_bad_key_ring_stops_the_app(config, keys):
    with pytest.raises(ConfigError, match="FAVSYNC_JWT_"):
        create_app({**config, **keys})


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"FAVSYNC_SECRET_KEY": "abc"}, "FAVSYNC_SECRET_KEY"),
        ({"FAVSYNC_SECRET_KEY": "x" * 31}, "FAVSYNC_SECRET_KEY"),
        ({"FAVSYNC_JWT_SECRET_KEY": "abc"}, "FAVSYNC_JWT_SECRET_KEY"),
        ({"FAVSYNC_JWT_SECRET_KEY": "abc", **ring({"k1": NEW}, "k1")}, "FAVSYNC_JWT_SECRET_KEY"),
        (ring({"k1": "é" * 15}, "k1"), "FAVSYNC_JWT_KEYS"),  # 30 bytes: bytes count, not characters
    ],
)
def test_production_refuses_a_key_shorter_than_32_bytes(config, keys, named):
    with pytest.raises(ConfigError, match=named) as refused:
        create_app({**config, **PRODUCTION, **keys})

    assert "abc" not in str(refused.value)


def test_a_32_byte_key_starts(make_app):
    assert make_app(**PRODUCTION, FAVSYNC_SECRET_KEY="x" * 32) is not None


def test_debug_may_use_a_short_key(make_app):
    assert make_app(DEBUG=True, TESTING=False, FAVSYNC_SECRET_KEY="abc") is not None

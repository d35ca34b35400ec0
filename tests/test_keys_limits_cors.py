"""Key rotation, sending limits behind proxies, and which sites may call favsync from a browser."""
import time

import jwt
import pytest
import sqlalchemy as sa

from favsync import create_app
from favsync.config import ConfigError
from favsync.database import session
from favsync.models import MagicLink

from conftest import API, Auth

OLD = "old-key-secret-that-is-long-enough-0123456789"
NEW = "new-key-secret-that-is-long-enough-0123456789"


def app_with(config, **overrides):
    return create_app({**config, **overrides})


def login(app, inbox, address="v@example.com"):
    return Auth(app.test_client(), inbox).login(address)["auth_token"]


def works(app, token):
    return app.test_client().get(API, headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_single_secret_signs_without_a_key_id(app, inbox):
    token = login(app, inbox)

    assert "kid" not in jwt.get_unverified_header(token)
    assert works(app, token) == 200


def test_tokens_verify_until_their_key_is_removed(config, inbox):
    before = app_with(config, FAVSYNC_JWT_KEYS={"2026-10": OLD}, FAVSYNC_JWT_ACTIVE_KID="2026-10")
    old_token = login(before, inbox)
    rotated = app_with(config, FAVSYNC_JWT_KEYS={"2026-10": OLD, "2026-11": NEW},
                       FAVSYNC_JWT_ACTIVE_KID="2026-11")
    new_token = login(rotated, inbox)
    retired = app_with(config, FAVSYNC_JWT_KEYS={"2026-11": NEW}, FAVSYNC_JWT_ACTIVE_KID="2026-11")

    assert jwt.get_unverified_header(old_token)["kid"] == "2026-10"
    assert jwt.get_unverified_header(new_token)["kid"] == "2026-11"
    assert works(rotated, old_token) == works(rotated, new_token) == 200
    assert works(retired, new_token) == 200
    assert works(retired, old_token) == 401


def test_an_unknown_key_id_is_refused(config, inbox, app):
    login(app, inbox)
    now = int(time.time())
    claims = {"client_id": 1, "brokerage_id": 1, "email": "v@example.com", "iat": now,
              "exp": now + 60, "type": "favorites_auth"}
    forged = jwt.encode(claims, config["FAVSYNC_SECRET_KEY"], headers={"kid": "made-up"})

    response = app.test_client().get(API, headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401
    assert "key" in response.json["error"]["message"]


def test_unversioned_tokens_verify_only_while_the_old_secret_is_configured(config, inbox, app):
    legacy = login(app, inbox)  # signed with the single secret, no key id
    keys = {"FAVSYNC_JWT_KEYS": {"k1": NEW}, "FAVSYNC_JWT_ACTIVE_KID": "k1"}

    keeping = app_with(config, FAVSYNC_JWT_SECRET_KEY=config["FAVSYNC_SECRET_KEY"], **keys)
    dropped = app_with(config, **keys)

    assert works(keeping, legacy) == 200
    assert works(dropped, legacy) == 401


def test_keys_come_from_the_environment_as_json(config, monkeypatch):
    monkeypatch.setenv("FAVSYNC_JWT_KEYS", f'{{"k1": "{NEW}"}}')
    monkeypatch.setenv("FAVSYNC_JWT_ACTIVE_KID", "k1")

    settings = create_app(config).extensions["favsync"].settings

    assert settings.jwt_keys == {"k1": NEW} and settings.jwt_active_kid == "k1"


@pytest.mark.parametrize(
    "keys", [{"FAVSYNC_JWT_KEYS": {"k1": "short"}, "FAVSYNC_JWT_ACTIVE_KID": "k1"},
             {"FAVSYNC_JWT_KEYS": {"k1": NEW}, "FAVSYNC_JWT_ACTIVE_KID": "k2"},
             {"FAVSYNC_JWT_KEYS": "not json", "FAVSYNC_JWT_ACTIVE_KID": "k1"}],
)
def test_a_bad_key_ring_stops_the_app(config, keys):
    with pytest.raises(ConfigError, match="FAVSYNC_JWT_"):
        app_with(config, **keys)


# --- sending limits ------------------------------------------------------


def test_a_global_cap_protects_the_mail_quota(config, inbox):
    app = app_with(config, FAVSYNC_RATELIMIT_EMAILS_GLOBAL="2 per hour")
    client = app.test_client()

    statuses = [client.post(f"{API}/magic-link", json={"email": f"v{i}@example.com"}).status_code
                for i in range(3)]
    refused = client.post(f"{API}/magic-link", json={"email": "w@example.com"})

    assert statuses == [202, 202, 429]
    assert refused.json["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) > 0
    assert len(inbox.messages) == 2
    with app.app_context():
        assert session().scalar(sa.select(sa.func.count()).select_from(MagicLink)) == 2


def ask(client, address, forwarded_for=None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post(f"{API}/magic-link", json={"email": address}, headers=headers).status_code


def test_behind_a_trusted_proxy_each_visitor_has_its_own_limit(config):
    client = app_with(config, FAVSYNC_TRUSTED_PROXIES=1,
                      FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP="2 per hour").test_client()

    first = [ask(client, f"a{i}@example.com", "203.0.113.7") for i in range(3)]
    other = ask(client, "b@example.com", "198.51.100.9")
    # A visitor's own X-Forwarded-For entry is ignored: the proxy appends the real one.
    spoofed = ask(client, "c@example.com", "198.51.100.99, 203.0.113.7")

    assert first == [202, 202, 429] and other == 202 and spoofed == 429


def test_an_ipv6_visitor_is_limited_by_its_64(config):
    client = create_app({**config, "FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP": "2 per hour"}).test_client()

    def from_address(address, email):
        return client.post(f"{API}/magic-link", json={"email": email},
                           environ_base={"REMOTE_ADDR": address}).status_code

    same_64 = [from_address(f"2001:db8:1:2::{i}", f"v{i}@example.com") for i in range(1, 4)]
    other_64 = from_address("2001:db8:1:3::1", "w@example.com")

    assert same_64 == [202, 202, 429] and other_64 == 202


def test_without_trusted_proxies_forwarded_headers_are_ignored(config):
    client = app_with(config, FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP="2 per hour").test_client()

    statuses = [ask(client, f"a{i}@example.com", f"198.51.100.{i}") for i in range(3)]

    assert statuses == [202, 202, 429]


# --- CORS ----------------------------------------------------------------

SITE = "https://homes.example"


@pytest.fixture
def cors_client(config):
    return app_with(config, FAVSYNC_CORS_ORIGINS=[SITE, "https://other.example"]).test_client()


def test_a_listed_site_gets_its_preflight_answered(cors_client):
    response = cors_client.options(f"{API}/sync", headers={
        "Origin": SITE, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})

    assert response.status_code == 204
    assert response.headers["Allow"] == "POST, DELETE, OPTIONS"  # /sync, and DELETE /<listing_id>
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_a_listed_site_can_read_retry_after(config):
    client = app_with(config, FAVSYNC_CORS_ORIGINS=[SITE],
                      FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP="1 per hour").test_client()
    for _ in range(2):
        response = client.post(f"{API}/magic-link", json={"email": "v@example.com"},
                               headers={"Origin": SITE})

    assert response.status_code == 429
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize("origin", ["https://evil.example", "https://homes.example.evil.example",
                                    "http://homes.example", "null"])
def test_any_other_origin_gets_no_cors_headers(cors_client, origin):
    preflight = cors_client.options(f"{API}/sync", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"})
    actual = cors_client.get(API, headers={"Origin": origin})

    for response in (preflight, actual):
        assert not [h for h in response.headers.keys() if h.startswith("Access-Control-")]


def test_without_listed_origins_there_are_no_cors_headers(client):
    response = client.get(API, headers={"Origin": SITE})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_bad_origins_stop_the_app(config):
    with pytest.raises(ConfigError, match="FAVSYNC_CORS_ORIGINS"):
        app_with(config, FAVSYNC_CORS_ORIGINS=["homes.example"])

"""Which sites may call favsync from a browser."""
import pytest

from favsync import create_app

from conftest import API, Auth, ConfigError

SITE = "https://homes.example"


@pytest.fixture
def cors_client(make_app):
    return make_app(FAVSYNC_CORS_ORIGINS=[SITE, "https://other.example"]).test_client()


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


def test_a_listed_site_can_read_retry_after(make_app, inbox):
    app = make_app(FAVSYNC_CORS_ORIGINS=[SITE], FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP="1 per hour")
    auth = Auth(app.test_client(), inbox)
    auth.request_link(headers={"Origin": SITE})

    response = auth.request_link(headers={"Origin": SITE})

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
        create_app({**config, "FAVSYNC_CORS_ORIGINS": ["homes.example"]})

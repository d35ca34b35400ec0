"""Which sites may call favsync from a browser."""
import pytest

from favsync import create_app

from conftest import API, COOKIE, Auth, ConfigError, bearer, log_out, refresh, set_cookie

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


# --- the refresh cookie across sites -------------------------------------


def test_a_cross_site_cookie_is_partitioned(make_app, inbox):
    client = make_app(FAVSYNC_REFRESH_COOKIE_SAMESITE="None").test_client()
    login = Auth(client, inbox).login_response()

    cleared = log_out(client)

    for header in (set_cookie(login), set_cookie(cleared)):
        assert "SameSite=None" in header and "Secure" in header and "Partitioned" in header


def test_a_same_site_cookie_is_not_partitioned_unless_asked(make_app, inbox):
    lax = Auth(make_app().test_client(), inbox).login_response("a@example.com")
    asked = Auth(make_app(FAVSYNC_REFRESH_COOKIE_PARTITIONED=True).test_client(), inbox)

    assert "Partitioned" not in set_cookie(lax)
    assert "Partitioned" in set_cookie(asked.login_response("b@example.com"))


def test_a_partitioned_cookie_must_be_secure(config):
    with pytest.raises(ConfigError, match="FAVSYNC_REFRESH_COOKIE_PARTITIONED"):
        create_app({**config, "FAVSYNC_REFRESH_COOKIE_PARTITIONED": True,
                    "FAVSYNC_REFRESH_COOKIE_SECURE": False})


# What a page of any site can send with the visitor's cookies, without a preflight.
SIMPLE_REQUESTS = [
    {"data": "", "content_type": "text/plain"},
    {"data": "all=true", "content_type": "application/x-www-form-urlencoded"},
    {"data": '{"all": true}', "content_type": "text/plain"},
    {},
]


@pytest.mark.parametrize("path", ["/logout", "/token/refresh"])
@pytest.mark.parametrize("request_", SIMPLE_REQUESTS)
def test_a_foreign_page_cannot_use_the_refresh_cookie(cors_client, inbox, path, request_):
    token = Auth(cors_client, inbox).token()
    cookie = cors_client.get_cookie(COOKIE, path=API).value

    response = cors_client.post(f"{API}{path}", headers={"Origin": "https://evil.example"}, **request_)
    without_origin = cors_client.post(f"{API}{path}", **request_)

    assert response.status_code == without_origin.status_code == 403
    assert without_origin.json["error"]["code"] == "json_required"
    assert "Set-Cookie" not in response.headers
    assert cors_client.get_cookie(COOKIE, path=API).value == cookie
    assert cors_client.get(API, headers=bearer(token)).status_code == 200
    assert refresh(cors_client).status_code == 200


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost.evil.example"])
def test_an_unlisted_origin_cannot_use_the_refresh_cookie_even_with_json(cors_client, inbox, origin):
    token = Auth(cors_client, inbox).token()

    logout = log_out(cors_client, headers={"Origin": origin})
    refreshed = refresh(cors_client, headers={"Origin": origin})

    assert logout.status_code == refreshed.status_code == 403
    assert logout.json["error"]["code"] == "origin_not_allowed"
    assert cors_client.get(API, headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("origin", [SITE, "http://localhost", None])
def test_the_site_and_the_apis_own_pages_use_the_cookie(cors_client, inbox, origin):
    Auth(cors_client, inbox).login()
    headers = {} if origin is None else {"Origin": origin}

    assert refresh(cors_client, headers=headers).status_code == 200
    assert log_out(cors_client, headers=headers).status_code == 200

"""The user flow and its races against real gunicorn workers, real SMTP, a real database."""
import http.client
import json
import re
from collections import Counter
from urllib.parse import urlsplit

import jwt
import pytest
import sqlalchemy as sa

from conftest import API, bearer

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(start_server):
    return start_server()


def test_the_whole_flow_across_workers(server, inbox):
    session_id = "0f8fad5b-d9cb-469f-a165-70867728950e"
    verified = server.login(inbox, "flow@example.com", {"X-Session-ID": session_id})
    assert verified.status == 200
    claims = jwt.decode(verified.body["auth_token"], options={"verify_signature": False})
    assert claims["type"] == "favorites_auth" and claims["email"] == "flow@example.com"
    headers = bearer(verified.body["auth_token"])

    synced = server.request("POST", f"{API}/sync", {"favorites": ["98970014", "98970015"]}, headers)
    merged = server.request("POST", f"{API}/sync", {"favorites": ["98970015", "98970171"]}, headers)
    deleted = server.request("DELETE", f"{API}/98970014", None, headers)
    listed = server.request("GET", API, None, headers)
    again = server.login(inbox, "flow@example.com")

    assert synced.body["favorites"] == ["98970014", "98970015"]
    assert merged.body["favorites"] == ["98970014", "98970015", "98970171"]
    assert deleted.body["favorites"] == ["98970015", "98970171"]
    assert listed.body["favorites"] == ["98970015", "98970171"]
    assert again.body["client_id"] == verified.body["client_id"]
    assert again.body["favorites"] == ["98970015", "98970171"]
    log = server.output()
    assert "flow@example.com" not in log and verified.body["auth_token"] not in log
    assert "/verify/***" in log
    for message in inbox.to("flow@example.com"):
        assert inbox.secret_in(message) not in log
    # gunicorn.conf.py's line: time, worker, level, logger, then the request's own line.
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[\d+\] INFO favsync\.requests: "
                     r"[0-9A-Za-z._-]{1,64} GET /api/v1/favorites 200 \d+\.\dms$", log, re.MULTILINE)


def test_a_token_is_consumed_exactly_once_under_a_race(server, inbox):
    server.request("POST", f"{API}/magic-link", {"email": "race@example.com"})
    path = urlsplit(inbox.link_for("race@example.com")).path

    replies = server.race(24, "GET", path)

    assert Counter(r.status for r in replies) == {200: 1, 410: 23}
    assert {r.body["error"]["code"] for r in replies if r.status == 410} == {"token_used"}


def test_concurrent_requests_for_one_email_get_exactly_three_links(server, inbox):
    bodies = [{"email": "crowd@example.com"}] * 10

    replies = server.race(10, "POST", f"{API}/magic-link", bodies)

    assert Counter(r.status for r in replies) == {202: 3, 429: 7}
    assert all(int(r.headers["Retry-After"]) > 0 for r in replies if r.status == 429)
    assert len(inbox.to("crowd@example.com", count=3)) == 3


def test_overlapping_syncs_never_lose_an_id(server, inbox):
    headers = bearer(server.login(inbox, "devices@example.com").body["auth_token"])
    bodies = [{"favorites": [f"L{(i * 5 + j) % 40}" for j in range(10)]} for i in range(16)]

    replies = server.race(16, "POST", f"{API}/sync", bodies, headers)

    assert [r.status for r in replies] == [200] * 16
    expected = {listing for body in bodies for listing in body["favorites"]}
    stored = server.request("GET", API, None, headers).body["favorites"]
    assert sorted(stored) == sorted(expected) and len(stored) == len(set(stored))


def test_bad_input_is_a_client_error_over_http(server):
    replies = [
        server.request("POST", f"{API}/magic-link", {"email": "nope"}),
        server.request("POST", f"{API}/magic-link", {"email": "a@example.com"}, {"X-Session-ID": "x"}),
        server.request("GET", f"{API}/verify/{'A' * 43}"),
        server.request("POST", f"{API}/sync", {"favorites": []}, {"Authorization": "Bearer x"}),
    ]

    assert [r.status for r in replies] == [400, 400, 400, 401]
    assert all(r.body["success"] is False for r in replies)


@pytest.mark.parametrize("chunked", [False, True], ids=["declared-length", "chunked"])
def test_the_body_limit_holds_over_http_with_or_without_a_declared_length(server, chunked):
    # FAVSYNC_MAX_BODY_BYTES (64 KiB): a body within it of a declared length is read as
    # sent, one of none (chunked) or over it through werkzeug's limit (guards.py).
    def post(body: bytes) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if chunked:
            connection.request("POST", f"{API}/magic-link", iter([body[:1000], body[1000:]]),
                               {**headers, "Transfer-Encoding": "chunked"}, encode_chunked=True)
        else:
            connection.request("POST", f"{API}/magic-link", body, headers)
        try:
            return connection.getresponse().status
        finally:
            connection.close()

    address = f"limit-{'chunked' if chunked else 'declared'}@example.com"

    # Over it: refused. werkzeug cuts a body of no declared length off at the limit,
    # and the cut JSON is refused as JSON (400); a declared length over it, at once.
    assert post(json.dumps({"email": address, "pad": "x" * 70_000}).encode()) == (
        400 if chunked else 413)
    # Within it, read whole: JSON may end in 60,000 spaces.
    assert post(json.dumps({"email": address}).encode() + b" " * 60_000) == 202


def test_logging_out_everywhere_is_seen_by_every_worker(server, inbox):
    phone = server.login(inbox, "everywhere@example.com").body["auth_token"]
    laptop = server.login(inbox, "everywhere@example.com").body["auth_token"]
    assert server.request("GET", API, None, bearer(laptop)).status == 200

    out = server.request("POST", f"{API}/logout", {"all": True}, bearer(phone))
    replies = server.race(12, "GET", API, headers=bearer(laptop))

    assert out.status == 200
    assert [r.status for r in replies] == [401] * 12


def refresh_cookie(reply) -> str:
    """The refresh cookie a reply sets, as a Cookie header value."""
    return reply.headers["Set-Cookie"].split(";", 1)[0]


def live_refresh_tokens(server) -> int:
    engine = sa.create_engine(server.environment["FAVSYNC_SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(
                "SELECT count(*) FROM favsync_refresh_tokens"
                " WHERE rotated_at IS NULL AND revoked_at IS NULL")).scalar()
    finally:
        engine.dispose()


def test_a_cookie_refreshed_at_once_by_many_gets_one_successor_across_workers(server, inbox):
    login = server.login(inbox, "replay@example.com")
    before = live_refresh_tokens(server)

    replies = server.race(50, "POST", f"{API}/token/refresh", [{}] * 50,
                          {"Cookie": refresh_cookie(login)})

    assert [r.status for r in replies] == [200] * 50
    assert len([r for r in replies if "Set-Cookie" in r.headers]) == 1  # one rotation, 49 replays
    assert live_refresh_tokens(server) == before


def test_a_plain_logout_is_seen_by_every_worker(server, inbox):
    login = server.login(inbox, "logout@example.com")
    headers = bearer(login.body["auth_token"])
    assert server.request("GET", API, None, headers).status == 200

    out = server.request("POST", f"{API}/logout", {}, {"Cookie": refresh_cookie(login)})
    replies = server.race(12, "GET", API, headers=headers)

    assert out.status == 200
    assert [r.status for r in replies] == [401] * 12


def test_seed_002_login_consumes_a_code_exactly_once_under_a_race(server, inbox):
    server.request("POST", f"{API}/magic-link", {"email": "seed-race@example.com"})
    code = inbox.secret_for("seed-race@example.com")

    replies = server.race(24, "POST", "/api/auth/magic-link/verify", [{"code": code}] * 24)

    assert Counter(r.status for r in replies) == {200: 1, 410: 23}
    [winner] = [r for r in replies if r.status == 200]
    assert winner.body["user"]["email"] == "seed-race@example.com"
    assert {r.body["detail"] for r in replies if r.status == 410} == {
        "This sign-in link was already used, perhaps in another browser; sign in again here."}


def test_the_server_does_not_announce_itself_and_forbids_sniffing(server):
    for reply in (server.request("GET", "/healthz"), server.request("GET", API)):
        assert "Server" not in reply.headers
        assert reply.headers["X-Content-Type-Options"] == "nosniff"

"""The user flow and its races against real gunicorn workers, real SMTP, a real database."""
from collections import Counter
from urllib.parse import urlsplit

import jwt
import pytest

from conftest import API

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(start_server):
    return start_server()


def login(server, inbox, address, headers=None):
    count = len(inbox.received(address)) + 1
    assert server.request("POST", f"{API}/magic-link", {"email": address}, headers).status == 202
    return server.request("GET", urlsplit(inbox.link_for(address, count)).path)


def test_the_whole_flow_across_workers(server, inbox):
    session_id = "0f8fad5b-d9cb-469f-a165-70867728950e"
    verified = login(server, inbox, "flow@example.com", {"X-Session-ID": session_id})
    assert verified.status == 200
    claims = jwt.decode(verified.body["auth_token"], options={"verify_signature": False})
    assert claims["type"] == "favorites_auth" and claims["email"] == "flow@example.com"
    bearer = {"Authorization": f"Bearer {verified.body['auth_token']}"}

    synced = server.request("POST", f"{API}/sync", {"favorites": ["98970014", "98970015"]}, bearer)
    merged = server.request("POST", f"{API}/sync", {"favorites": ["98970015", "98970171"]}, bearer)
    deleted = server.request("DELETE", f"{API}/98970014", None, bearer)
    listed = server.request("GET", API, None, bearer)
    again = login(server, inbox, "flow@example.com")

    assert synced.body["favorites"] == ["98970014", "98970015"]
    assert merged.body["favorites"] == ["98970014", "98970015", "98970171"]
    assert deleted.body["favorites"] == listed.body["favorites"] == ["98970015", "98970171"]
    assert again.body["client_id"] == verified.body["client_id"]
    assert again.body["favorites"] == ["98970015", "98970171"]
    log = server.output()
    assert "flow@example.com" not in log and verified.body["auth_token"] not in log
    assert "/verify/***" in log
    for message in inbox.to("flow@example.com"):
        assert inbox.secret_in(message) not in log


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
    token = login(server, inbox, "devices@example.com").body["auth_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    bodies = [{"favorites": [f"L{(i * 5 + j) % 40}" for j in range(10)]} for i in range(16)]

    replies = server.race(16, "POST", f"{API}/sync", bodies, bearer)

    assert [r.status for r in replies] == [200] * 16
    expected = {listing for body in bodies for listing in body["favorites"]}
    stored = server.request("GET", API, None, bearer).body["favorites"]
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


def test_logging_out_everywhere_is_seen_by_every_worker(server, inbox):
    phone = login(server, inbox, "everywhere@example.com").body["auth_token"]
    laptop = login(server, inbox, "everywhere@example.com").body["auth_token"]
    assert server.request("GET", API, None, {"Authorization": f"Bearer {laptop}"}).status == 200

    out = server.request("POST", f"{API}/logout", {"all": True}, {"Authorization": f"Bearer {phone}"})
    replies = server.race(12, "GET", API, headers={"Authorization": f"Bearer {laptop}"})

    assert out.status == 200
    assert [r.status for r in replies] == [401] * 12

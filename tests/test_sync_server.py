"""Devices of one visitor syncing at once, against real gunicorn workers and a real database."""
import pytest

from conftest import API

pytestmark = pytest.mark.server

DEVICES = 8


@pytest.fixture(scope="module")
def server(start_server):
    return start_server()


def test_devices_syncing_at_once_take_turns_and_nothing_comes_back(server, inbox):
    token = server.login(inbox, "race-devices@example.com").body["auth_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    listed = [f"L{i}" for i in range(2 * DEVICES)]
    base = server.request("POST", f"{API}/sync", {"favorites": listed}, bearer).body["version"]
    # Every device starts from the same list: device i un-hearts L<i> and hearts N<i>.
    bodies = [
        {"favorites": [x for x in listed if x != f"L{i}"] + [f"N{i}"], "base_version": base}
        for i in range(DEVICES)
    ]

    replies = server.race(DEVICES, "POST", f"{API}/sync", bodies, bearer)

    assert [r.status for r in replies] == [200] * DEVICES
    assert {r.body["merge"] for r in replies} == {"three-way"}
    # One at a time: each sync made the next version and saw exactly the syncs before it.
    in_turn = sorted(range(DEVICES), key=lambda i: replies[i].body["version"])
    assert [replies[i].body["version"] for i in in_turn] == list(range(base + 1, base + 1 + DEVICES))
    for turn, i in enumerate(in_turn):
        before = in_turn[: turn + 1]
        expected = set(listed) - {f"L{j}" for j in before} | {f"N{j}" for j in before}
        assert set(replies[i].body["favorites"]) == expected
    everything = set(listed) - {f"L{j}" for j in range(DEVICES)} | {f"N{j}" for j in range(DEVICES)}
    assert set(server.request("GET", API, None, bearer).body["favorites"]) == everything

    # A stale laptop still holding the first list brings none of the removals back.
    stale = server.request("POST", f"{API}/sync", {"favorites": listed, "base_version": base}, bearer)
    assert set(stale.body["favorites"]) == everything


def test_seed_000_and_versioned_devices_syncing_at_once_lose_no_heart(server, inbox):
    token = server.login(inbox, "race-mixed@example.com").body["auth_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    base = server.request("POST", f"{API}/sync", {"favorites": ["K"]}, bearer).body["version"]
    bodies = [
        {"favorites": ["K", f"U{i}"]} if i % 2 else {"favorites": ["K", f"V{i}"], "base_version": base}
        for i in range(DEVICES)
    ]

    replies = server.race(DEVICES, "POST", f"{API}/sync", bodies, bearer)

    assert [r.status for r in replies] == [200] * DEVICES
    stored = server.request("GET", API, None, bearer).body
    assert set(stored["favorites"]) == {"K"} | {body["favorites"][1] for body in bodies}
    assert stored["version"] == base + DEVICES

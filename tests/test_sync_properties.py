"""Property: devices hearting, un-hearting, syncing (stale or not) and deleting, in any order,
end where an observed-remove set would.

The reference model is the intended semantics, written without versions: every
heart is a unique tag; an id is a favourite while some tag of it is live; an
un-heart kills the tags its device had seen. A three-way sync hands the server
the device's new tags and the tags it killed; a union sync (seed 000, or a
first sync) adds a tag for each id the server lacks and forgets the device's
un-hearts. favsync must agree with it after every step, on SQLite and PostgreSQL.
"""
from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)


from conftest import API, auth_token_for

IDS = ["A1", "B2", "C3"]  # few, so that devices collide on them
BASE, SESSION, UNION = "base_version", "X-Session-ID", "seed 000"
KINDS = (BASE, BASE, SESSION, UNION)  # one simulated device of each kind, two of the first

EXAMPLES = 60
STEPS = 30


@dataclass
class ModelDevice:
    """One device: its list, what it last received, and its changes since."""

    kind: str
    headers: dict
    favorites: list[str] = field(default_factory=list)
    version: int | None = None  # the base it sends (BASE), or that the server keeps for it (SESSION)
    seen: dict[str, frozenset] = field(default_factory=dict)  # live tags in its last answer
    hearted: dict[str, int] = field(default_factory=dict)  # id -> the tag of its new heart
    killed: dict[str, set] = field(default_factory=dict)  # id -> tags its un-hearts killed
    snapshots: list[tuple] = field(default_factory=list)  # earlier states, to go stale

    @property
    def pending(self) -> bool:
        return bool(self.hearted or self.killed)

    def three_way(self) -> bool:
        return self.kind != UNION and self.version is not None


class Devices(RuleBasedStateMachine):
    """Simulated devices of one visitor against favsync, checked against the reference."""

    app = None  # set per test run

    def __init__(self) -> None:
        super().__init__()
        self.client = self.app.test_client()
        bearer = {"Authorization": f"Bearer {new_visitor(self.app)}"}
        self.devices = [
            ModelDevice(kind, {**bearer, SESSION: str(uuid.uuid4())} if kind == SESSION else bearer)
            for kind in KINDS
        ]
        self.tags: dict[str, set] = {listing_id: set() for listing_id in IDS}  # the reference
        self.new_tag = itertools.count(1).__next__
        self.version, self.favorites_at_version = 0, set()  # the newest answer's

    @initialize(hearts=st.lists(st.sampled_from(IDS), unique=True))
    def every_device_syncs_once(self, hearts):
        """Start where the interesting cases are: every device holds the list, at a version."""
        for listing_id in hearts:
            self.heart_or_unheart(0, listing_id)
        for index in range(len(self.devices)):
            self.sync(index, with_base=True)

    # -- what a device does on its own ------------------------------------------------

    @rule(index=st.integers(0, len(KINDS) - 1), listing_id=st.sampled_from(IDS))
    def heart_or_unheart(self, index, listing_id):
        device = self.devices[index]
        if listing_id in device.favorites:
            device.favorites.remove(listing_id)
            killed = set(device.seen.get(listing_id, ()))
            if listing_id in device.hearted:
                killed.add(device.hearted.pop(listing_id))
            device.killed.setdefault(listing_id, set()).update(killed)
        else:
            device.favorites.append(listing_id)
            device.hearted[listing_id] = self.new_tag()

    @rule(index=st.integers(0, 1), back=st.integers(1, 5))
    def go_stale(self, index, back):
        """A second tab, or a laptop restored from a backup: an earlier state of the device."""
        device = self.devices[index]
        if len(device.snapshots) > back:
            device.favorites, device.version, device.seen = device.snapshots[-1 - back]
            device.favorites = list(device.favorites)
            device.hearted, device.killed = {}, {}

    # -- what reaches the server -----------------------------------------------------

    @rule(index=st.integers(0, len(KINDS) - 1), with_base=st.booleans())
    def sync(self, index, with_base):
        device = self.devices[index]
        three_way = device.three_way() and (with_base or device.kind == SESSION)
        body = {"favorites": device.favorites}
        if device.kind != UNION:
            body["removed"] = sorted(device.killed)
        if three_way and device.kind == BASE:
            body["base_version"] = device.version
        before = self.live()
        answer = self.client.post(f"{API}/sync", json=body, headers=device.headers).json

        if three_way:
            for listing_id, tags in device.killed.items():
                self.tags[listing_id] -= tags
            for listing_id, tag in device.hearted.items():
                self.tags[listing_id].add(tag)
        else:
            for listing_id in device.favorites:
                if not self.tags[listing_id]:
                    self.tags[listing_id].add(self.new_tag())
        assert answer["merge"] == ("three-way" if three_way else "union"), answer
        event(f"{device.kind} sync: {answer['merge']}")
        self.check_answer(answer)
        # The answer lists them as the database does (a sync works the order out itself).
        assert self.client.get(API, headers=device.headers).json["favorites"] == answer["favorites"]
        if three_way:
            # No resurrection: what the device held untouched and another removed stays removed.
            untouched = set(device.seen) & set(device.favorites) - set(device.killed)
            assert not (untouched - before) & set(answer["favorites"])
            # Add wins: what the device hearted since its base is there.
            assert set(device.hearted) <= set(answer["favorites"])
        else:
            # A union-only client gets the union.
            assert set(answer["favorites"]) == before | set(device.favorites)
        self.received(device, answer)

    @rule(index=st.integers(0, 1), listing_id=st.sampled_from(IDS))
    def delete(self, index, listing_id):
        device = self.devices[index]
        if device.pending:  # a device sends its own changes first
            self.sync(index, with_base=True)
        answer = self.client.delete(f"{API}/{listing_id}", headers=device.headers).json
        self.tags[listing_id].clear()
        self.check_answer(answer)
        self.received(device, answer)

    @rule(index=st.integers(0, 1), since=st.booleans())
    def poll(self, index, since):
        """Catch up without syncing: the whole list, or the changes since the device's version."""
        device = self.devices[index]
        if device.pending:
            self.sync(index, with_base=True)
        if since:
            changes = self.client.get(API, query_string={"since": device.version},
                                      headers=device.headers).json
            favorites = [i for i in device.favorites if i not in changes["removed"]]
            favorites += [i for i in changes["added"] if i not in favorites]
            assert "reset" not in changes  # nothing was purged
            answer = {"favorites": favorites, "version": changes["version"]}
        else:
            answer = self.client.get(API, headers=device.headers).json
        self.check_answer(answer)
        self.received(device, answer)

    @rule()
    def everyone_syncs_twice(self):
        """With no new changes, two rounds of syncs leave every device with the same list."""
        for _ in range(2):
            for index in range(len(self.devices)):
                self.sync(index, with_base=True)
        assert all(set(d.favorites) == self.live() for d in self.devices)
        assert len({tuple(d.favorites) for d in self.devices}) == 1

    # -- the reference -------------------------------------------------------------

    def live(self) -> set[str]:
        return {listing_id for listing_id, tags in self.tags.items() if tags}

    def check_answer(self, answer) -> None:
        assert set(answer["favorites"]) == self.live(), (answer, self.tags)
        assert len(answer["favorites"]) == len(set(answer["favorites"]))

    def received(self, device, answer) -> None:
        # Every change makes a new, larger version; an unchanged version means unchanged favourites.
        assert answer["version"] >= self.version
        if answer["version"] == self.version:
            assert self.live() == self.favorites_at_version
        self.version, self.favorites_at_version = answer["version"], self.live()
        device.favorites = list(answer["favorites"])
        device.version = answer["version"]
        device.seen = {i: frozenset(self.tags[i]) for i in answer["favorites"]}
        device.hearted, device.killed = {}, {}
        device.snapshots.append((tuple(device.favorites), device.version, device.seen))


def new_visitor(app) -> str:
    """A fresh client of brokerage 1, and its auth token."""
    return auth_token_for(app, f"devices-{uuid.uuid4().hex[:12]}@example.com")


def test_devices_end_where_an_observed_remove_set_would(app):
    Devices.app = app
    run_state_machine_as_test(
        Devices,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            derandomize=True,  # the same runs every time
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

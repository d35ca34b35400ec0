"""Sending limits: per visitor (behind proxies too) and globally."""
import pytest

from conftest import Auth, MagicLink, count


@pytest.fixture
def limited(make_app, inbox):
    """Build an app with the given limits; ask for links on it."""
    return lambda **limits: Auth(make_app(**limits).test_client(), inbox)


def statuses(auth, addresses, **kwargs):
    """The statuses of link requests for `addresses`, in order."""
    return [auth.request_link(address, **kwargs).status_code for address in addresses]


def visitors(how_many, name="v"):
    """Distinct addresses: v0@example.com, v1@example.com, ..."""
    return [f"{name}{i}@example.com" for i in range(how_many)]


def test_a_global_cap_protects_the_mail_quota(make_app, inbox):
    app = make_app(FAVSYNC_RATELIMIT_EMAILS_GLOBAL="2 per hour")
    auth = Auth(app.test_client(), inbox)

    first = statuses(auth, visitors(3))
    refused = auth.request_link("w@example.com")

    assert first == [202, 202, 429]
    assert refused.json["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) > 0
    assert len(inbox.messages) == 2
    assert count(app, MagicLink) == 2


def forwarded(chain):
    return {"headers": {"X-Forwarded-For": chain}}


def test_behind_a_trusted_proxy_each_visitor_has_its_own_limit(limited):
    auth = limited(FAVSYNC_TRUSTED_PROXIES=1, FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP="2 per hour")

    first = statuses(auth, visitors(3, "a"), **forwarded("203.0.113.7"))
    other = statuses(auth, ["b@example.com"], **forwarded("198.51.100.9"))
    # A visitor's own X-Forwarded-For entry is ignored: the proxy appends the real one.
    spoofed = statuses(auth, ["c@example.com"], **forwarded("198.51.100.99, 203.0.113.7"))

    assert first == [202, 202, 429] and other == [202] and spoofed == [429]


def test_without_trusted_proxies_forwarded_headers_are_ignored(limited):
    auth = limited(FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP="2 per hour")

    replies = [auth.request_link(f"a{i}@example.com", **forwarded(f"198.51.100.{i}")) for i in range(3)]

    assert [r.status_code for r in replies] == [202, 202, 429]


def test_an_ipv6_visitor_is_limited_by_its_64(limited):
    auth = limited(FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP="2 per hour")

    def from_address(address, email):
        return auth.request_link(email, environ_base={"REMOTE_ADDR": address}).status_code

    same_64 = [from_address(f"2001:db8:1:2::{i}", f"v{i}@example.com") for i in range(1, 4)]
    other_64 = from_address("2001:db8:1:3::1", "w@example.com")

    assert same_64 == [202, 202, 429] and other_64 == 202

"""Rate limits: per email, per visitor (behind proxies too), per IP for codes, and globally."""
import pytest
from limits import parse_many

from conftest import (
    CODE_ALPHABET, CODE_LENGTH, MAX_CODE_ATTEMPTS, Auth, MagicLink, count, settings, stored_links,
)

YEAR = 365 * 24 * 3600


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


def test_request_rate_shield_per_email(limited, inbox):
    auth = limited(FAVSYNC_RATELIMIT_MAGIC_LINK_PER_EMAIL="2 per hour")

    first = statuses(auth, ["v@example.com"] * 3)
    refused = auth.request_link("V@example.com")

    assert first == [202, 202, 429]
    assert refused.json["error"]["code"] == "rate_limited"
    assert 3500 <= int(refused.headers["Retry-After"]) <= 3600
    assert len(inbox.to("v@example.com")) == 2


def links_a_year(rates: str) -> int:
    """The most links one mailbox may request in a year under `rates`."""
    return min(rate.amount * YEAR // rate.get_expiry() for rate in parse_many(rates))


def test_a_year_of_the_most_guessing_allowed_succeeds_with_at_most_a_hundredth_of_a_percent(app):
    # Each emailed code can be tried MAX_CODE_ATTEMPTS times before its link dies;
    # the links one mailbox can get are capped by the per-email rates.
    links = links_a_year(settings(app).ratelimit_magic_link_per_email)
    codes = len(CODE_ALPHABET) ** CODE_LENGTH

    chance = links * MAX_CODE_ATTEMPTS / codes

    assert links == 20 * 365  # the daily cap binds: 10 an hour would be 87,600
    assert chance <= 0.01 / 100  # 0.01 %
    assert not set("01IO") & set(CODE_ALPHABET)  # nothing to misread when typing it


def test_a_daily_cap_per_mailbox_holds_beside_the_hourly_one(limited, inbox):
    auth = limited(FAVSYNC_RATELIMIT_MAGIC_LINK_PER_EMAIL="100 per hour; 3 per day",
                   FAVSYNC_MAGIC_LINK_MAX_PENDING=10)

    first = statuses(auth, ["v@example.com"] * 4)
    refused = auth.request_link("v@example.com")

    assert first == [202, 202, 202, 429]
    assert 86300 <= int(refused.headers["Retry-After"]) <= 86400


def test_sub_addresses_share_their_mailboxs_limit(limited, app, inbox):
    auth = limited(FAVSYNC_RATELIMIT_MAGIC_LINK_PER_EMAIL="3 per hour")

    replies = statuses(auth, ["v+1@example.com", "v+2@example.com", "V+3@example.com",
                              "v@example.com", "v+4@example.com", "w@example.com"])

    assert replies == [202, 202, 202, 429, 429, 202]
    assert [m["To"] for m in inbox.messages] == [
        "v+1@example.com", "v+2@example.com", "v+3@example.com", "w@example.com"]


def test_the_pending_rule_and_the_stored_email_keep_the_tag(make_app, inbox):
    app = make_app()
    auth = Auth(app.test_client(), inbox)

    replies = statuses(auth, ["v+a@example.com"] * 3 + ["v+b@example.com"] + ["v+a@example.com"])

    assert replies == [202, 202, 202, 202, 429]  # the fifth: too many pending for v+a
    assert auth.request_link("v+a@example.com").json["error"]["code"] == "too_many_pending_links"
    assert {link.email for link in stored_links(app)} == {"v+a@example.com", "v+b@example.com"}


def test_request_rate_shield_per_ip(limited):
    auth = limited(FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP="3 per hour")

    assert statuses(auth, visitors(4)) == [202, 202, 202, 429]


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


def test_code_attempts_are_rate_limited_per_ip(limited):
    auth = limited(FAVSYNC_RATELIMIT_VERIFY_CODE_PER_IP="3 per hour")

    replies = [auth.enter_code("ABCD-EFGH", address) for address in visitors(4)]

    assert [r.status_code for r in replies] == [400, 400, 400, 429]


def test_without_its_store_the_limits_apply_per_process(limited):
    auth = limited(FAVSYNC_RATELIMIT_STORAGE_URI="redis://127.0.0.1:9/0",  # discard port: nothing there
                   FAVSYNC_RATELIMIT_MAGIC_LINK_PER_EMAIL="2 per hour")

    assert statuses(auth, ["v@example.com"] * 3) == [202, 202, 429]


# --- favsync inside a host site ------------------------------------------


def test_host_limits_apply_to_host_routes_only(make_host, inbox):
    host = make_host()
    client = host.test_client()
    statuses_of_home = [client.get("/").status_code for _ in range(4)]
    auth = Auth(client, inbox, prefix="/favs")
    for address in ("one@example.com", "two@example.com", "three@example.com", "four@example.com"):
        auth.login(address)  # 4 per route: over the host's limit, were it applied

    assert statuses_of_home == [200, 200, 200, 429]
    assert client.get("/").data == b"<h1>Slow down</h1>"
    assert "limiter" in host.extensions and all(
        limiter.enabled for limiter in host.extensions["limiter"]
    )


@pytest.mark.parametrize(
    "host_limits",
    [
        {"RATELIMIT_ENABLED": False},
        {"RATELIMIT_DEFAULT": "1 per day", "RATELIMIT_APPLICATION": "1 per day"},
        {"RATELIMIT_STORAGE_OPTIONS": {"unknown_option": 1}, "RATELIMIT_KEY_PREFIX": "host"},
    ],
)
def test_host_limiter_settings_do_not_change_favsyncs_limits(make_host, inbox, host_limits):
    host = make_host(**host_limits, FAVSYNC_RATELIMIT_MAGIC_LINK_PER_EMAIL="2 per hour")
    auth = Auth(host.test_client(), inbox, prefix="/favs")

    first = statuses(auth, ["v@example.com"] * 3)
    refused = auth.request_link("v@example.com")

    assert first == [202, 202, 429]
    assert refused.json["error"]["code"] == "rate_limited" and "Retry-After" in refused.headers

"""The Host header: which hosts favsync answers on, and the brokerage (tenant) each one is."""
import pytest

from favsync import create_app

from conftest import (
    API, PRODUCTION, Auth, Brokerage, ConfigError, bearer, database, load_environment, settings,
)

LAKESIDE = "lakeside.example"


@pytest.fixture
def lakeside(app):
    """Brokerage 2, whose site is lakeside.example (brokerage 1 takes every other host)."""
    with database(app) as session:
        session.add(Brokerage(name="Lakeside Realty", domain=LAKESIDE))


def on(host: str, token: str) -> dict:
    return {"headers": {"Host": host, **bearer(token)}}


def test_a_token_works_only_on_a_host_of_its_brokerage(client, auth, lakeside):
    default_token = auth.token("v@example.com")
    lakeside_token = auth.login("w@example.com", headers={"Host": LAKESIDE})["auth_token"]

    assert client.get(API, **on("localhost", default_token)).status_code == 200
    assert client.get(API, **on(LAKESIDE, lakeside_token)).status_code == 200
    refused = [client.get(API, **on(LAKESIDE, default_token)),
               client.get(API, **on("localhost", lakeside_token)),
               client.post(f"{API}/sync", json={"favorites": ["A1"]}, **on(LAKESIDE, default_token))]
    assert [r.status_code for r in refused] == [401, 401, 401]
    assert refused[0].headers["WWW-Authenticate"] == "Bearer"


def test_the_standalone_service_reads_its_trusted_hosts_from_the_environment():
    config = {}
    load_environment(config, {"FAVSYNC_TRUSTED_HOSTS": "homes.example .lakeside.example"})

    assert config == {"FAVSYNC_TRUSTED_HOSTS": frozenset({"homes.example", ".lakeside.example"})}


@pytest.fixture
def production(make_app):
    return make_app(**{**PRODUCTION, "FAVSYNC_TRUSTED_HOSTS": "homes.example .lakeside.example"})


@pytest.mark.parametrize("host", ["homes.example", "homes.example:8443", "www.lakeside.example",
                                  "lakeside.example"])
def test_in_production_a_trusted_host_is_served(production, inbox, host):
    response = Auth(production.test_client(), inbox).request_link(headers={"Host": host})

    assert response.status_code == 202


@pytest.mark.parametrize("host", ["evil.example", "homes.example.evil.example", "127.0.0.1"])
def test_in_production_an_unknown_host_is_400_not_the_default_brokerage(production, inbox, host):
    client = production.test_client()

    asked = Auth(client, inbox).request_link(headers={"Host": host})
    listed = client.get(API, headers={"Host": host})

    assert asked.status_code == listed.status_code == 400
    assert asked.json["error"]["code"] == "unknown_host"
    assert inbox.messages == []
    assert client.get("/healthz", headers={"Host": host}).status_code == 200  # probes by address


def test_debug_and_testing_keep_the_fallback_to_the_default_brokerage(auth, inbox):
    assert auth.request_link(headers={"Host": "anything.example"}).status_code == 202
    assert inbox.to("visitor@example.com")[0]["Subject"] == "Your sign-in link for favsync"


def test_production_needs_trusted_hosts(config):
    with pytest.raises(ConfigError, match="FAVSYNC_TRUSTED_HOSTS"):
        create_app({**config, **PRODUCTION, "FAVSYNC_TRUSTED_HOSTS": None})


@pytest.mark.parametrize("value", ["https://homes.example", "homes.example:443", "homes.example/x"])
def test_trusted_hosts_are_host_names(make_app, value):
    with pytest.raises(ConfigError, match="FAVSYNC_TRUSTED_HOSTS"):
        make_app(FAVSYNC_TRUSTED_HOSTS=value)


def test_an_embedding_site_shares_flasks_trusted_hosts(make_host, inbox):
    host = make_host()  # production, with TRUSTED_HOSTS and no FAVSYNC_TRUSTED_HOSTS

    assert settings(host).trusted_hosts == frozenset({"localhost", "lakeside.example"})
    assert Auth(host.test_client(), inbox, prefix="/favs").request_link().status_code == 202

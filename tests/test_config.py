"""Settings: read once per app, checked at start-up, a bad value named by its key."""
import pytest
from flask import Flask

from favsync import FavSync, create_app

from conftest import Auth, ConfigError, load_environment, settings

PRODUCTION = {"TESTING": False, "FAVSYNC_MAGIC_LINK_URL": "https://homes.example/verify?token={token}"}


def production_config(config):
    return {**config, **PRODUCTION}


@pytest.mark.parametrize(
    "key",
    # Without a magic-link URL, links would be built from the request's Host header.
    ["FAVSYNC_SECRET_KEY", "FAVSYNC_MAIL_SERVER", "FAVSYNC_MAGIC_LINK_URL"],
)
def test_refuses_to_start_in_production_without(config, key):
    with pytest.raises(ConfigError, match=key):
        create_app({**production_config(config), key: None})


def test_starts_in_production_with_all_three(make_app):
    assert not make_app(**PRODUCTION).testing


def test_development_keeps_a_random_secret_in_the_instance_folder(make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("FAVSYNC_INSTANCE_PATH", str(tmp_path / "instance"))

    first = settings(make_app(FAVSYNC_SECRET_KEY=None))
    second = settings(make_app(FAVSYNC_SECRET_KEY=None))

    [kept] = (tmp_path / "instance").iterdir()
    assert len(first.secret_key) >= 40
    assert first.secret_key == kept.read_text().strip()
    assert second.secret_key == first.secret_key
    assert first.jwt_secret_key == first.secret_key


def test_the_jwt_key_can_differ_from_the_secret_key(make_app, config):
    other = "another-secret-key-that-is-long-enough-too"

    read = settings(make_app(FAVSYNC_JWT_SECRET_KEY=other))

    assert read.jwt_secret_key == other
    assert read.secret_key == config["FAVSYNC_SECRET_KEY"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("FAVSYNC_URL_PREFIX", "api/"),
        ("FAVSYNC_MAX_FAVORITES", 0),
        ("FAVSYNC_MAGIC_LINK_TTL", -1),
        ("FAVSYNC_MAIL_PORT", "25"),
        ("FAVSYNC_MAGIC_LINK_URL", "https://example.com/login"),
        ("FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP", "lots"),
    ],
)
def test_a_bad_value_stops_the_app_naming_the_key(config, key, value):
    config[key] = value

    with pytest.raises(ConfigError, match=key):
        create_app(config)


def test_reads_the_environment():
    config = {}
    load_environment(config, {
        "FAVSYNC_MAIL_PORT": "2525",
        "FAVSYNC_MAIL_USE_TLS": "true",
        "FAVSYNC_MAIL_SERVER": "smtp.example.com",
        "FAVSYNC_MAGIC_LINK_URL": "",
        "UNRELATED": "x",
    })

    assert config == {
        "FAVSYNC_MAIL_PORT": 2525,
        "FAVSYNC_MAIL_USE_TLS": True,
        "FAVSYNC_MAIL_SERVER": "smtp.example.com",
        "FAVSYNC_MAGIC_LINK_URL": None,
    }


@pytest.mark.parametrize(("key", "raw"), [("FAVSYNC_MAIL_PORT", "twenty"), ("FAVSYNC_MAIL_USE_TLS", "maybe")])
def test_a_bad_environment_value_names_the_key(key, raw):
    with pytest.raises(ConfigError, match=key):
        load_environment({}, {key: raw})


def test_mounts_under_the_configured_prefix(make_app, inbox):
    client = make_app(FAVSYNC_URL_PREFIX="/favs").test_client()

    assert Auth(client, inbox, prefix="/favs").request_link().status_code == 202
    assert Auth(client, inbox).request_link().status_code == 404


def test_keeps_its_state_per_app_and_not_on_the_extension(config):
    extension = FavSync()
    first, second = Flask("first"), Flask("second")
    for app, prefix in ((first, "/a"), (second, "/b")):
        app.config.update(config, FAVSYNC_URL_PREFIX=prefix)
        extension.init_app(app)

    assert not hasattr(extension, "app")
    assert settings(first).url_prefix == "/a"
    assert settings(second).url_prefix == "/b"

import pytest

from favsync import FavSync, create_app
from favsync.config import ConfigError, load_environment


def production_config(config):
    config = dict(config)
    config["TESTING"] = False
    config["FAVSYNC_MAGIC_LINK_URL"] = "https://homes.example/verify?token={token}"
    return config


def test_refuses_to_start_without_a_secret_key_in_production(config):
    config = production_config(config)
    config["FAVSYNC_SECRET_KEY"] = None

    with pytest.raises(ConfigError, match="FAVSYNC_SECRET_KEY"):
        create_app(config)


def test_refuses_to_start_without_a_mail_server_in_production(config):
    config = production_config(config)
    config["FAVSYNC_MAIL_SERVER"] = None

    with pytest.raises(ConfigError, match="FAVSYNC_MAIL_SERVER"):
        create_app(config)


def test_refuses_to_build_links_from_the_host_header_in_production(config):
    config = production_config(config)
    config["FAVSYNC_MAGIC_LINK_URL"] = None

    with pytest.raises(ConfigError, match="FAVSYNC_MAGIC_LINK_URL"):
        create_app(config)


def test_starts_in_production_with_all_three(config):
    assert not create_app(production_config(config)).testing


def test_development_keeps_a_random_secret_in_the_instance_folder(config, tmp_path, monkeypatch):
    monkeypatch.setenv("FAVSYNC_INSTANCE_PATH", str(tmp_path / "instance"))
    config["FAVSYNC_SECRET_KEY"] = None

    first = create_app(config).extensions["favsync"].settings
    second = create_app(config).extensions["favsync"].settings

    assert len(first.secret_key) >= 40
    assert first.secret_key == second.secret_key
    assert first.jwt_keys == {None: first.secret_key}


def test_the_jwt_key_can_differ_from_the_secret_key(config):
    config["FAVSYNC_JWT_SECRET_KEY"] = "another-secret-key-that-is-long-enough-too"

    settings = create_app(config).extensions["favsync"].settings
    assert settings.jwt_keys == {None: "another-secret-key-that-is-long-enough-too"}
    assert not hasattr(settings, "jwt_secret_key")  # the key ring holds it


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("FAVSYNC_URL_PREFIX", "api/"),
        ("FAVSYNC_MAX_FAVORITES", 0),
        ("FAVSYNC_MAGIC_LINK_TTL", -1),
        ("FAVSYNC_MAIL_PORT", "twenty-five"),
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


def test_mounts_under_the_configured_prefix(config, auth):
    config["FAVSYNC_URL_PREFIX"] = "/favs"
    client = create_app(config).test_client()

    assert client.post("/favs/magic-link", json={"email": "v@example.com"}).status_code == 202
    assert client.post("/api/v1/favorites/magic-link", json={"email": "v@example.com"}).status_code == 404


def test_keeps_its_state_per_app_and_not_on_the_extension(config):
    extension = FavSync()
    from flask import Flask

    first, second = Flask("first"), Flask("second")
    for app, prefix in ((first, "/a"), (second, "/b")):
        app.config.update(config, FAVSYNC_URL_PREFIX=prefix)
        extension.init_app(app)

    assert not hasattr(extension, "app")
    assert first.extensions["favsync"].settings.url_prefix == "/a"
    assert second.extensions["favsync"].settings.url_prefix == "/b"

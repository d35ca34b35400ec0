"""Settings: read once per app, checked at start-up, a bad value named by its key."""
import pytest
from flask import Flask

from favsync import FavSync, create_app
from favsync.config import Settings

from conftest import PRODUCTION, Auth, ConfigError, load_environment, settings

SECRET = "test-secret-key-that-is-long-enough-for-hs256"
RING_KEY = "k" * 32



def production_config(config):
    return {**config, **PRODUCTION}


@pytest.mark.parametrize(
    "key",
    # Without a magic-link URL, links would be built from the request's Host header;
    # without trusted hosts, any Host header would choose the default brokerage.
    ["FAVSYNC_SECRET_KEY", "FAVSYNC_MAIL_SERVER", "FAVSYNC_MAGIC_LINK_URL", "FAVSYNC_TRUSTED_HOSTS"],
)
def test_refuses_to_start_in_production_without(config, key):
    with pytest.raises(ConfigError, match=key):
        create_app({**production_config(config), key: None})


def test_starts_in_production_with_all_four(make_app):
    assert not make_app(**PRODUCTION).testing


def test_development_keeps_a_random_secret_in_the_instance_folder(make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("FAVSYNC_INSTANCE_PATH", str(tmp_path / "instance"))

    first = settings(make_app(FAVSYNC_SECRET_KEY=None))
    second = settings(make_app(FAVSYNC_SECRET_KEY=None))

    [kept] = (tmp_path / "instance").iterdir()
    assert len(first.secret_key) >= 40
    assert first.secret_key == kept.read_text().strip()
    assert second.secret_key == first.secret_key
    assert first.jwt_keys == {None: first.secret_key}


def test_the_jwt_key_can_differ_from_the_secret_key(make_app, config):
    other = "another-secret-key-that-is-long-enough-too"

    read = settings(make_app(FAVSYNC_JWT_SECRET_KEY=other))

    assert read.jwt_keys == {None: other}
    assert read.secret_key == config["FAVSYNC_SECRET_KEY"]
    assert not hasattr(read, "jwt_secret_key")  # the key ring holds it


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


def app_with(config: dict) -> Flask:
    """A bare testing app holding `config`, its favsync settings read."""
    app = Flask("settings")
    app.config.update({"TESTING": True, "FAVSYNC_SECRET_KEY": SECRET, **config})
    app.extensions["settings"] = Settings.from_app(app)
    return app


def settings_of(config: dict) -> Settings:
    return app_with(config).extensions["settings"]


def from_environment(environ: dict) -> dict:
    config = {}
    load_environment(config, environ)
    return config


A_AND_B = frozenset({"https://a.example", "https://b.example"})


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("FAVSYNC_CORS_ORIGINS", "https://a.example https://b.example", A_AND_B),
        ("FAVSYNC_CORS_ORIGINS", "https://a.example,https://b.example", A_AND_B),
        ("FAVSYNC_CORS_ORIGINS", " https://a.example ,  https://b.example ", A_AND_B),
        ("FAVSYNC_CORS_ORIGINS", "https://a.example", frozenset({"https://a.example"})),
        ("FAVSYNC_CORS_ORIGINS", "", frozenset()),
        ("FAVSYNC_MAIL_USE_TLS", "false", False),
        ("FAVSYNC_MAIL_USE_TLS", "0", False),
        ("FAVSYNC_MAIL_USE_TLS", "no", False),
        ("FAVSYNC_MAIL_USE_TLS", "OFF", False),
        ("FAVSYNC_MAIL_USE_TLS", "true", True),
        ("FAVSYNC_MAIL_USE_TLS", " 1 ", True),
        ("FAVSYNC_MAIL_USE_SSL", "yes", True),
        ("FAVSYNC_REFRESH_COOKIE_SECURE", "false", False),
        ("FAVSYNC_REFRESH_COOKIE_SECURE", "", True),  # not set: Secure outside debug
        ("FAVSYNC_MAGIC_LINK_TTL", "900", 900),
        ("FAVSYNC_MAIL_PORT", " 2525 ", 2525),
        ("FAVSYNC_MAIL_PORT", "", 25),  # not set: the default
        ("FAVSYNC_TRUSTED_PROXIES", "0", 0),
        ("FAVSYNC_MAIL_SERVER", "", None),
        ("FAVSYNC_MAIL_SERVER", "smtp.example.com", "smtp.example.com"),
    ],
)
def test_app_config_and_environment_strings_read_alike(key, raw, expected):
    attribute = key.removeprefix("FAVSYNC_").lower()

    from_app_config = getattr(settings_of({key: raw}), attribute)
    from_env = getattr(settings_of(from_environment({key: raw})), attribute)

    assert from_app_config == from_env == expected
    assert type(from_app_config) is type(expected)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("FAVSYNC_CORS_ORIGINS", ["https://a.example", "https://b.example"], A_AND_B),
        ("FAVSYNC_CORS_ORIGINS", ("https://a.example", "https://b.example"), A_AND_B),
        ("FAVSYNC_CORS_ORIGINS", {"https://a.example", "https://b.example"}, A_AND_B),
        ("FAVSYNC_CORS_ORIGINS", None, frozenset()),
        ("FAVSYNC_MAIL_USE_TLS", True, True),
        ("FAVSYNC_MAIL_PORT", 2525, 2525),
        ("FAVSYNC_MAIL_PORT", None, 25),
    ],
)
def test_python_values_in_app_config_are_taken_as_they_are(key, value, expected):
    assert getattr(settings_of({key: value}), key.removeprefix("FAVSYNC_").lower()) == expected


def test_the_key_ring_reads_alike_as_json_or_as_a_dict():
    ring = {"FAVSYNC_JWT_ACTIVE_KID": "k1"}
    as_json = '{"k1": "%s"}' % RING_KEY

    from_app_config = settings_of({**ring, "FAVSYNC_JWT_KEYS": as_json}).jwt_keys
    from_env = settings_of({**ring, **from_environment({"FAVSYNC_JWT_KEYS": as_json})}).jwt_keys
    from_dict = settings_of({**ring, "FAVSYNC_JWT_KEYS": {"k1": RING_KEY}}).jwt_keys

    assert from_app_config == from_env == from_dict == {"k1": RING_KEY}


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("FAVSYNC_MAIL_PORT", "twenty-five"),
        ("FAVSYNC_MAIL_PORT", "25.5"),
        ("FAVSYNC_MAIL_PORT", "0"),
        ("FAVSYNC_MAGIC_LINK_TTL", "-1"),
        ("FAVSYNC_TRUSTED_PROXIES", "-1"),
        ("FAVSYNC_MAIL_USE_TLS", "maybe"),
        ("FAVSYNC_REFRESH_COOKIE_SECURE", "sometimes"),
        ("FAVSYNC_JWT_KEYS", "{not json"),
        ("FAVSYNC_JWT_KEYS", '["k1"]'),
        ("FAVSYNC_JWT_KEYS", '{"k1": "short"}'),
        ("FAVSYNC_CORS_ORIGINS", "https://a.example homes.example"),
        ("FAVSYNC_CORS_ORIGINS", "https://a.example/"),
        ("FAVSYNC_URL_PREFIX", "favs"),
        ("FAVSYNC_REFRESH_COOKIE_SAMESITE", "lax"),
        ("FAVSYNC_RATELIMIT_EMAILS_GLOBAL", "many"),
    ],
)
def test_a_bad_string_names_the_key_from_either_source(key, raw):
    with pytest.raises(ConfigError, match=key):
        settings_of({key: raw})
    with pytest.raises(ConfigError, match=key):
        settings_of(from_environment({key: raw}))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("FAVSYNC_MAIL_PORT", True),
        ("FAVSYNC_MAIL_PORT", 25.0),
        ("FAVSYNC_MAIL_USE_TLS", 1),
        ("FAVSYNC_MAIL_SERVER", 42),
        ("FAVSYNC_CORS_ORIGINS", [42]),
        ("FAVSYNC_CORS_ORIGINS", 42),
        ("FAVSYNC_JWT_KEYS", ["k1"]),
    ],
)
def test_a_python_value_of_the_wrong_type_names_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        settings_of({key: value})


def test_a_wrongly_typed_secret_is_not_repeated_in_the_error():
    with pytest.raises(ConfigError, match="FAVSYNC_MAIL_PASSWORD") as error:
        settings_of({"FAVSYNC_MAIL_PASSWORD": ["hunter2-password"]})

    assert "hunter2" not in str(error.value)


def test_a_mail_use_tls_of_false_is_false_end_to_end(config):
    config["FAVSYNC_MAIL_USE_TLS"] = "false"

    assert create_app(config).extensions["favsync"].settings.mail_use_tls is False


def test_cors_origins_separated_by_spaces_in_the_environment(config, monkeypatch):
    monkeypatch.setenv("FAVSYNC_CORS_ORIGINS", "https://a.example https://b.example")

    assert create_app(config).extensions["favsync"].settings.cors_origins == A_AND_B


def test_every_setting_keeps_its_default_in_app_config():
    config = app_with({}).config

    assert config["FAVSYNC_MAIL_PORT"] == 25
    assert config["FAVSYNC_URL_PREFIX"] == "/api/v1/favorites"
    assert config["FAVSYNC_MAGIC_LINK_URL"] is None
    assert config["FAVSYNC_JWT_SECRET_KEY"] is None

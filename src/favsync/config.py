"""Every FAVSYNC_* setting, declared once: its name, type, default and check.

A setting is a field of `Settings`: `mail_port: int = setting(25, _positive)`
declares FAVSYNC_MAIL_PORT, a whole number, 25 unless set, positive. The
environment and app.config are read by the same rules, from the field's type:
"900" is 900; "true"/"1"/"yes"/"on" and "false"/"0"/"no"/"off" are booleans;
"https://a.example https://b.example" (or with commas) is a set of two; a JSON
object is a dict. Python values of the right type are taken as they are, and
None or a blank string means "not set": the default applies.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import ssl
import types
import typing
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from limits import parse_many as parse_rates

DAY = 24 * 3600
SAMESITE_VALUES = ("Strict", "Lax", "None")
# HS256 keys: shorter ones can be searched; a forged token then reads anyone's favourites.
MIN_KEY_BYTES = 32
# A host name without port (a leading dot: and its subdomains), or an IP literal.
HOST_NAME = re.compile(r"\.?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\]")
AUTH_PREFIX_OFF = "off"  # FAVSYNC_AUTH_URL_PREFIX=off: seed 002's endpoint is not served

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# What a value of each setting type must be, for the error message.
_KINDS = {
    str: "a string",
    int: "a whole number",
    bool: "true or false",
    frozenset: "a list of strings, or one string of them separated by spaces or commas",
    dict: 'a JSON object such as {"2026-11": "secret"}',
}


class ConfigError(RuntimeError):
    """A FAVSYNC_* setting is missing or invalid; the message names the key."""


# Checks: each raises ValueError saying, after the key, what is wrong with a set value.


def _positive(number: int) -> None:
    if number <= 0:
        raise ValueError(f"must be a positive whole number, not {number!r}")


def _not_negative(number: int) -> None:
    if number < 0:
        raise ValueError("must be a whole number, 0 or more")


def _url_path(prefix: str) -> None:
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError("must start with '/' and not end with one")


def _cookie_path(path: str) -> None:
    if not path.startswith("/"):
        raise ValueError("must start with '/'")


def _auth_prefix(prefix: str) -> None:
    if prefix != AUTH_PREFIX_OFF:
        _url_path(prefix)


def _link_template(url: str) -> None:
    if "{token}" not in url:
        raise ValueError("must contain '{token}'")


def _listing_template(url: str) -> None:
    if "{listing_id}" not in url:
        raise ValueError("must contain '{listing_id}'")


def _rate_limit(rate: str) -> None:
    try:
        parse_rates(rate)
    except ValueError as exc:
        raise ValueError(
            f"is not a rate limit such as '10 per hour' (or several: '10 per hour; 20 per day'): {exc}"
        ) from None


def _samesite(value: str) -> None:
    if value not in SAMESITE_VALUES:
        raise ValueError(f"must be one of {SAMESITE_VALUES}")


def _key_secrets(keys: dict) -> None:
    if not keys or not all(
        isinstance(kid, str) and kid and isinstance(secret, str) and _long_enough(secret)
        for kid, secret in keys.items()
    ):
        raise ValueError(f"must map key ids to secrets of at least {MIN_KEY_BYTES} bytes")


def _long_enough(key: str) -> bool:
    return len(key.encode()) >= MIN_KEY_BYTES


def _origins(origins: frozenset) -> None:
    for origin in origins:
        if not origin.startswith(("http://", "https://")) or origin.endswith("/"):
            raise ValueError(f"holds {origin!r}; origins look like https://homes.example")


def _host_names(hosts: frozenset) -> None:
    for host in hosts:
        if not HOST_NAME.fullmatch(host):
            raise ValueError(f"holds {host!r}; host names look like homes.example or .homes.example")


def _ca_file(path: str) -> None:
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"is not a readable file of PEM CA certificates ({exc})") from None


def _http_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")


def _webhook_secret(secret: str) -> None:
    if not secret.startswith("whsec_"):
        raise ValueError(
            "must be whsec_ and base64 (python -c 'import base64, secrets; "
            "print(\"whsec_\" + base64.b64encode(secrets.token_bytes(32)).decode())')"
        )


def setting(default: Any = None, check: Callable[[Any], None] | None = None, *,
            secret: bool = False) -> Any:
    """Declare a field of Settings as a FAVSYNC_* setting with its default and check."""
    return field(repr=not secret, metadata={"favsync": (default, check)})


@dataclass(frozen=True)
class Settings:
    """One app's favsync configuration, read and validated once at start-up.

    Each field is the FAVSYNC_* setting of its name in capitals: to add a
    setting, add a field. Its type is str, int, bool, frozenset or dict; a
    setting whose default is None may stay unset (annotate it `| None` unless
    from_app fills it in).
    """

    url_prefix: str = setting("/api/v1/favorites", _url_path)
    # Where seed 002's POST <prefix>/magic-link/verify is served; "off": not at all.
    auth_url_prefix: str = setting("/api/auth", _auth_prefix)
    # The host names favsync answers on (".homes.example": and its subdomains); required
    # outside debug and testing. None: Flask's TRUSTED_HOSTS, if the app sets it.
    trusted_hosts: frozenset = setting(frozenset(), _host_names)
    # None: favsync.sqlite3 in the instance folder.
    sqlalchemy_database_uri: str | None = setting(secret=True)
    # None: debug and testing keep a random one in the instance folder; otherwise required.
    secret_key: str = setting(secret=True)
    # Read, not kept: the key of tokens without a key id (None: the secret key); see _key_ring.
    jwt_secret_key: InitVar[str | None] = setting(secret=True)
    auth_token_ttl: int = setting(90 * DAY, _positive)
    magic_link_ttl: int = setting(15 * 60, _positive)
    magic_link_max_pending: int = setting(3, _positive)
    # None (debug and testing only): this service's GET verify URL.
    magic_link_url: str | None = setting(None, _link_template)
    mail_server: str | None = setting()  # None: emails go to the log (debug and testing only)
    mail_port: int = setting(25, _positive)
    mail_use_tls: bool = setting(False)
    mail_use_ssl: bool = setting(False)
    # None: the system's CA certificates verify the mail server.
    mail_tls_ca_file: str | None = setting(None, _ca_file)
    mail_username: str | None = setting()
    mail_password: str | None = setting(secret=True)
    # None: the host's MAIL_DEFAULT_SENDER, else no-reply@localhost.
    mail_default_sender: str | None = setting()
    mail_timeout: int = setting(10, _positive)
    ratelimit_storage_uri: str = setting("memory://", secret=True)  # may hold a password
    ratelimit_key_prefix: str = setting("favsync")
    # Keyed on the mailbox (a+tag@x counts as a@x). With 5 code guesses per link this
    # bounds code guessing: see "Guessing budget" in README.md.
    ratelimit_magic_link_per_email: str = setting("10 per hour; 20 per day", _rate_limit)
    ratelimit_magic_link_per_ip: str = setting("20 per hour", _rate_limit)
    ratelimit_verify_code_per_ip: str = setting("30 per hour", _rate_limit)
    ratelimit_emails_global: str = setting("1000 per hour", _rate_limit)
    max_favorites: int = setting(500, _positive)
    tombstone_days: int = setting(90, _positive)  # how long a removal is remembered
    max_body_bytes: int = setting(64 * 1024, _positive)
    refresh_token_ttl: int = setting(90 * DAY, _positive)
    # A session (refresh family) ends this long after its sign-in, however often it refreshes.
    refresh_absolute_ttl: int = setting(90 * DAY, _positive)
    # None: Secure, except in debug (plain-HTTP development).
    refresh_cookie_secure: bool = setting()
    refresh_cookie_samesite: str = setting("Lax", _samesite)
    refresh_cookie_path: str | None = setting(None, _cookie_path)  # None: favsync's API path
    # None: Partitioned (CHIPS) exactly when SameSite=None, so browsers keep it cross-site.
    refresh_cookie_partitioned: bool = setting()
    # A JSON object of key id -> secret; from_app adds None -> the key of tokens without one.
    jwt_keys: dict = setting(None, _key_secrets, secret=True)
    jwt_active_kid: str | None = setting()
    trusted_proxies: int = setting(0, _not_negative)
    cors_origins: frozenset = setting(frozenset(), _origins)
    demo: bool | None = setting()  # the demo site at / (create_app); None: in debug only
    # Delivery of the outbox. No broker: the web process delivers after each response.
    celery_broker_url: str | None = setting(secret=True)  # may hold a password
    celery_queue: str = setting("favsync")  # several deployments can share one broker
    delivery_max_attempts: int = setting(8, _positive)
    delivery_lease: int = setting(120, _positive)  # seconds a worker holds a row it sends
    sweep_interval: int = setting(30, _positive)  # seconds between sweeps (--loop, beat)
    webhook_url: str | None = setting(None, _http_url)
    webhook_secret: str | None = setting(None, _webhook_secret, secret=True)
    # Agent messages and listing alerts (seed 001), mounted at <prefix>/messages, /agents, /listings.
    messages_url_prefix: str = setting("/api/v1", _url_path)
    # Seconds a message token signs its client in after the email was sent; 0: never.
    message_token_ttl: int = setting(14 * DAY, _not_negative)
    listing_url: str | None = setting(None, _listing_template)  # None: listings are not links
    # None: this service's own unsubscribe URL, from the request that sent the alert.
    unsubscribe_url: str | None = setting(None, _link_template)
    ratelimit_message_token_failures_per_ip: str = setting("20 per hour", _rate_limit)

    @classmethod
    def from_app(cls, app) -> Settings:
        """Read and check the app's FAVSYNC_* keys; raise ConfigError naming a bad one."""
        values = {
            declared.name: declared.read(app.config.setdefault(declared.key, declared.default))
            for declared in SETTINGS
        }
        relaxed = app.debug or app.testing
        values["secret_key"] = values["secret_key"] or _development_secret(app, relaxed)
        if not app.debug:
            _check_key_lengths(values["secret_key"], values["jwt_secret_key"])
        values["jwt_keys"] = _key_ring(
            values["jwt_keys"], values["jwt_secret_key"], values["secret_key"]
        )
        if values["demo"] is None:
            values["demo"] = app.debug
        if values["refresh_cookie_secure"] is None:
            values["refresh_cookie_secure"] = not app.debug
        if values["refresh_cookie_partitioned"] is None:
            values["refresh_cookie_partitioned"] = values["refresh_cookie_samesite"] == "None"
        if not values["trusted_hosts"] and app.config.get("TRUSTED_HOSTS"):
            values["trusted_hosts"] = frozenset(app.config["TRUSTED_HOSTS"])
        settings = cls(**values)
        settings._check_together(relaxed, app.debug)
        return settings

    @property
    def serves_seed_login(self) -> bool:
        """Whether seed 002's POST <auth_url_prefix>/magic-link/verify is served."""
        return self.auth_url_prefix != AUTH_PREFIX_OFF

    def _check_together(self, relaxed: bool, debug: bool) -> None:
        """Check what depends on two settings, or on debug and testing."""
        if self.refresh_cookie_samesite == "None" and not self.refresh_cookie_secure:
            raise ConfigError("FAVSYNC_REFRESH_COOKIE_SAMESITE=None needs a Secure cookie")
        if self.refresh_cookie_partitioned and not self.refresh_cookie_secure:
            raise ConfigError("FAVSYNC_REFRESH_COOKIE_PARTITIONED needs a Secure cookie")
        if self.mail_username is not None and not (self.mail_use_tls or self.mail_use_ssl) and not debug:
            raise ConfigError(
                "FAVSYNC_MAIL_USERNAME is set without FAVSYNC_MAIL_USE_TLS or FAVSYNC_MAIL_USE_SSL: "
                "outside debug favsync will not send the SMTP password in clear"
            )
        if self.jwt_active_kid not in self.jwt_keys:
            raise ConfigError(
                f"FAVSYNC_JWT_ACTIVE_KID {self.jwt_active_kid!r} is not a key of FAVSYNC_JWT_KEYS"
            )
        if self.delivery_lease <= 2 * self.mail_timeout:
            # A lease that runs out while a healthy worker still sends means a double send.
            raise ConfigError(
                "FAVSYNC_DELIVERY_LEASE must be more than twice FAVSYNC_MAIL_TIMEOUT"
            )
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ConfigError("FAVSYNC_WEBHOOK_SECRET must be set with FAVSYNC_WEBHOOK_URL")
        if self.magic_link_url is None and not relaxed:
            raise ConfigError(
                "FAVSYNC_MAGIC_LINK_URL is not set: outside debug and testing favsync will not "
                "build sign-in links from the request's Host header, which a client can forge "
                "(set e.g. https://homes.example/favorites/verify?token={token})"
            )
        if not self.trusted_hosts and not relaxed:
            raise ConfigError(
                "FAVSYNC_TRUSTED_HOSTS is not set: outside debug and testing favsync answers only "
                "on the host names it is given, since the Host header chooses the brokerage "
                "(set e.g. 'homes.example .lakeside.example')"
            )


@dataclass(frozen=True)
class Setting:
    """How one FAVSYNC_* setting is read, from its field in Settings."""

    name: str  # the attribute of Settings
    kind: type  # one of _KINDS
    default: Any
    check: Callable[[Any], None] | None

    @property
    def key(self) -> str:
        return f"FAVSYNC_{self.name.upper()}"

    def parse(self, value: Any) -> Any:
        """Turn a value from the environment or app.config into one of the setting's type."""
        if value is None or isinstance(value, str) and not value.strip():
            return self.default
        if isinstance(value, str) and self.kind is not str:
            try:
                value = _from_string(self.kind, value)
            except ValueError:
                raise self._wrong_type(value) from None
        elif self.kind is frozenset and isinstance(value, (list, tuple, set)):
            value = frozenset(value)
        if not self._has_kind(value):
            raise self._wrong_type(value)
        return value

    def read(self, value: Any) -> Any:
        """Parse a value and check it; raise ConfigError naming the key."""
        value = self.parse(value)
        if value is not None and self.check is not None:
            try:
                self.check(value)
            except ValueError as exc:
                raise ConfigError(f"{self.key} {exc}") from None
        return value

    def _has_kind(self, value: Any) -> bool:
        if self.kind is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if self.kind is frozenset:
            return isinstance(value, frozenset) and all(isinstance(item, str) for item in value)
        return isinstance(value, self.kind)

    def _wrong_type(self, value: Any) -> ConfigError:
        # Only numbers and booleans are repeated: a string setting may be a secret.
        shown = f", not {value!r}" if self.kind in (int, bool) else ""
        return ConfigError(f"{self.key} must be {_KINDS[self.kind]}{shown}")


def _from_string(kind: type, text: str) -> Any:
    """The value of type `kind` that `text` stands for; ValueError if none."""
    if kind is int:
        return int(text)
    if kind is bool and text.strip().lower() in _TRUE | _FALSE:
        return text.strip().lower() in _TRUE
    if kind is frozenset:
        return frozenset(text.replace(",", " ").split())
    if kind is dict:
        return json.loads(text)
    raise ValueError(text)


def _declared(name: str, hint: Any, metadata: Mapping) -> Setting:
    """The Setting a field of Settings declares, its type read from its annotation."""
    if isinstance(hint, InitVar):
        hint = hint.type
    if isinstance(hint, types.UnionType):  # `str | None`: a str that may be unset
        (hint,) = set(typing.get_args(hint)) - {type(None)}
    if hint not in _KINDS:
        kinds = ", ".join(kind.__name__ for kind in _KINDS)
        raise TypeError(f"Settings.{name}: a setting's type is one of {kinds}")
    default, check = metadata["favsync"]
    return Setting(name, hint, default, check)


# Every FAVSYNC_* setting, in declaration order. __dataclass_fields__ rather than
# fields(), which leaves out the InitVar jwt_secret_key.
_HINTS = typing.get_type_hints(Settings)
SETTINGS: tuple[Setting, ...] = tuple(
    _declared(f.name, _HINTS[f.name], f.metadata) for f in Settings.__dataclass_fields__.values()
)


def load_environment(config: dict, environ: Mapping[str, str] = os.environ) -> None:
    """Copy every FAVSYNC_* setting found in the environment into `config`, parsed."""
    for declared in SETTINGS:
        if declared.key in environ:
            config[declared.key] = declared.parse(environ[declared.key])


def _key_ring(keys: dict | None, jwt_secret_key: str | None, secret_key: str) -> dict:
    """The keys auth tokens may be signed with, by key id.

    Without FAVSYNC_JWT_KEYS: one key, FAVSYNC_JWT_SECRET_KEY (else the secret
    key), and tokens carry no key id. With it, tokens without a key id verify
    only while FAVSYNC_JWT_SECRET_KEY is still set (the pre-rotation key).
    """
    if keys is None:
        return {None: jwt_secret_key or secret_key}
    ring = dict(keys)
    if jwt_secret_key:
        ring[None] = jwt_secret_key
    return ring


def _check_key_lengths(secret_key: str, jwt_secret_key: str | None) -> None:
    """Refuse signing keys short enough to search (outside debug)."""
    for key, value in (("FAVSYNC_SECRET_KEY", secret_key), ("FAVSYNC_JWT_SECRET_KEY", jwt_secret_key)):
        if value is not None and not _long_enough(value):
            raise ConfigError(
                f"{key} must be at least {MIN_KEY_BYTES} bytes: it signs auth tokens, and a short "
                "key can be guessed (generate one with: python -c "
                "'import secrets; print(secrets.token_urlsafe(32))')"
            )


def _development_secret(app, relaxed: bool) -> str:
    """Keep a random secret in the instance folder, so debug tokens survive restarts."""
    if not relaxed:
        raise ConfigError(
            "FAVSYNC_SECRET_KEY is not set: outside debug and testing favsync refuses to "
            "start without a secret key (generate one with: python -c "
            "'import secrets; print(secrets.token_urlsafe(32))')"
        )
    path = Path(app.instance_path) / "favsync-dev-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()

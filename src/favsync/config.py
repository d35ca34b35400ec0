"""Every FAVSYNC_* setting in one place: its default, how it is read, how it is checked."""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from limits import parse as parse_rate

DEFAULTS: dict[str, Any] = {
    "FAVSYNC_URL_PREFIX": "/api/v1/favorites",
    "FAVSYNC_SQLALCHEMY_DATABASE_URI": None,  # None: favsync.sqlite3 in the instance folder
    "FAVSYNC_SECRET_KEY": None,
    "FAVSYNC_JWT_SECRET_KEY": None,  # None: the secret key
    "FAVSYNC_AUTH_TOKEN_TTL": 90 * 24 * 3600,
    "FAVSYNC_MAGIC_LINK_TTL": 15 * 60,
    "FAVSYNC_MAGIC_LINK_MAX_PENDING": 3,
    "FAVSYNC_MAGIC_LINK_URL": None,  # None (debug/testing only): this service's GET verify URL
    "FAVSYNC_MAIL_SERVER": None,  # None: emails are written to the log (debug/testing only)
    "FAVSYNC_MAIL_PORT": 25,
    "FAVSYNC_MAIL_USE_TLS": False,
    "FAVSYNC_MAIL_USE_SSL": False,
    "FAVSYNC_MAIL_USERNAME": None,
    "FAVSYNC_MAIL_PASSWORD": None,
    "FAVSYNC_MAIL_DEFAULT_SENDER": None,  # None: the host's MAIL_DEFAULT_SENDER, else no-reply@localhost
    "FAVSYNC_MAIL_TIMEOUT": 10,
    "FAVSYNC_RATELIMIT_STORAGE_URI": "memory://",
    "FAVSYNC_RATELIMIT_KEY_PREFIX": "favsync",
    "FAVSYNC_RATELIMIT_MAGIC_LINK_PER_EMAIL": "10 per hour",
    "FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP": "20 per hour",
    "FAVSYNC_RATELIMIT_VERIFY_CODE_PER_IP": "30 per hour",
    "FAVSYNC_RATELIMIT_EMAILS_GLOBAL": "1000 per hour",
    "FAVSYNC_MAX_FAVORITES": 500,
    "FAVSYNC_MAX_BODY_BYTES": 64 * 1024,
    "FAVSYNC_TOMBSTONE_DAYS": 90,  # how long a removed favourite is remembered
    "FAVSYNC_REFRESH_TOKEN_TTL": 90 * 24 * 3600,
    "FAVSYNC_REFRESH_COOKIE_SECURE": None,  # None: Secure, except in debug (plain-HTTP development)
    "FAVSYNC_REFRESH_COOKIE_SAMESITE": "Lax",
    "FAVSYNC_JWT_KEYS": None,  # {"key id": "secret", ...}; env: a JSON object
    "FAVSYNC_JWT_ACTIVE_KID": None,
    "FAVSYNC_TRUSTED_PROXIES": 0,
    "FAVSYNC_CORS_ORIGINS": None,  # env: origins separated by spaces or commas
}

# How a variable whose default is None is read from the environment.
KINDS = {
    "FAVSYNC_REFRESH_COOKIE_SECURE": bool,
    "FAVSYNC_JWT_KEYS": dict,
    "FAVSYNC_CORS_ORIGINS": list,
}
SAMESITE_VALUES = ("Strict", "Lax", "None")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(RuntimeError):
    """A FAVSYNC_* setting is missing or invalid; the message names the key."""


def load_environment(config: dict, environ: Mapping[str, str] = os.environ) -> None:
    """Copy every known FAVSYNC_* variable from the environment into `config`."""
    for key, default in DEFAULTS.items():
        if key in environ:
            config[key] = _parse(key, environ[key], default)


def _parse(key: str, raw: str, default: Any) -> Any:
    kind = KINDS.get(key) or type(default)
    if kind is dict:
        try:
            value = json.loads(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a JSON object such as {{\"2026-11\": \"secret\"}}") from None
        return value
    if kind is list:
        return [item for item in raw.replace(",", " ").split() if item]
    if kind is bool:
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise ConfigError(f"{key} must be true or false, not {raw!r}")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a whole number, not {raw!r}") from None
    return raw or None


@dataclass(frozen=True)
class Settings:
    """One app's favsync configuration, read and validated once at start-up."""

    url_prefix: str
    secret_key: str
    jwt_secret_key: str
    auth_token_ttl: int
    magic_link_ttl: int
    magic_link_max_pending: int
    magic_link_url: str | None
    mail_server: str | None
    mail_port: int
    mail_use_tls: bool
    mail_use_ssl: bool
    mail_username: str | None
    mail_password: str | None
    mail_default_sender: str | None
    mail_timeout: int
    ratelimit_storage_uri: str
    ratelimit_key_prefix: str
    ratelimit_magic_link_per_email: str
    ratelimit_magic_link_per_ip: str
    ratelimit_verify_code_per_ip: str
    ratelimit_emails_global: str
    max_favorites: int
    max_body_bytes: int
    tombstone_days: int
    refresh_token_ttl: int
    refresh_cookie_secure: bool
    refresh_cookie_samesite: str
    jwt_keys: dict  # key id (None: tokens without one) -> secret
    jwt_active_kid: str | None
    trusted_proxies: int
    cors_origins: frozenset

    @classmethod
    def from_app(cls, app) -> Settings:
        """Read and check the app's FAVSYNC_* keys; raise ConfigError naming a bad one."""
        config = app.config
        for key, default in DEFAULTS.items():
            config.setdefault(key, default)
        relaxed = app.debug or app.testing
        secret_key = config["FAVSYNC_SECRET_KEY"] or _development_secret(app, relaxed)
        settings = cls(
            url_prefix=config["FAVSYNC_URL_PREFIX"],
            secret_key=secret_key,
            jwt_secret_key=config["FAVSYNC_JWT_SECRET_KEY"] or secret_key,
            auth_token_ttl=config["FAVSYNC_AUTH_TOKEN_TTL"],
            magic_link_ttl=config["FAVSYNC_MAGIC_LINK_TTL"],
            magic_link_max_pending=config["FAVSYNC_MAGIC_LINK_MAX_PENDING"],
            magic_link_url=config["FAVSYNC_MAGIC_LINK_URL"],
            mail_server=config["FAVSYNC_MAIL_SERVER"],
            mail_port=config["FAVSYNC_MAIL_PORT"],
            mail_use_tls=config["FAVSYNC_MAIL_USE_TLS"],
            mail_use_ssl=config["FAVSYNC_MAIL_USE_SSL"],
            mail_username=config["FAVSYNC_MAIL_USERNAME"],
            mail_password=config["FAVSYNC_MAIL_PASSWORD"],
            mail_default_sender=config["FAVSYNC_MAIL_DEFAULT_SENDER"],
            mail_timeout=config["FAVSYNC_MAIL_TIMEOUT"],
            ratelimit_storage_uri=config["FAVSYNC_RATELIMIT_STORAGE_URI"],
            ratelimit_key_prefix=config["FAVSYNC_RATELIMIT_KEY_PREFIX"],
            ratelimit_magic_link_per_email=config["FAVSYNC_RATELIMIT_MAGIC_LINK_PER_EMAIL"],
            ratelimit_magic_link_per_ip=config["FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP"],
            ratelimit_verify_code_per_ip=config["FAVSYNC_RATELIMIT_VERIFY_CODE_PER_IP"],
            ratelimit_emails_global=config["FAVSYNC_RATELIMIT_EMAILS_GLOBAL"],
            max_favorites=config["FAVSYNC_MAX_FAVORITES"],
            max_body_bytes=config["FAVSYNC_MAX_BODY_BYTES"],
            tombstone_days=config["FAVSYNC_TOMBSTONE_DAYS"],
            refresh_token_ttl=config["FAVSYNC_REFRESH_TOKEN_TTL"],
            refresh_cookie_secure=(
                not app.debug
                if config["FAVSYNC_REFRESH_COOKIE_SECURE"] is None
                else config["FAVSYNC_REFRESH_COOKIE_SECURE"]
            ),
            refresh_cookie_samesite=config["FAVSYNC_REFRESH_COOKIE_SAMESITE"],
            jwt_keys=_key_ring(config, secret_key),
            jwt_active_kid=config["FAVSYNC_JWT_ACTIVE_KID"],
            trusted_proxies=config["FAVSYNC_TRUSTED_PROXIES"],
            cors_origins=frozenset(config["FAVSYNC_CORS_ORIGINS"] or ()),
        )
        settings._check()
        if settings.magic_link_url is None and not relaxed:
            raise ConfigError(
                "FAVSYNC_MAGIC_LINK_URL is not set: outside debug and testing favsync will not "
                "build sign-in links from the request's Host header, which a client can forge "
                "(set e.g. https://homes.example/favorites/verify?token={token})"
            )
        return settings

    def _check(self) -> None:
        if not self.url_prefix.startswith("/") or self.url_prefix.endswith("/"):
            raise ConfigError("FAVSYNC_URL_PREFIX must start with '/' and not end with one")
        for key in (
            "FAVSYNC_AUTH_TOKEN_TTL",
            "FAVSYNC_MAGIC_LINK_TTL",
            "FAVSYNC_MAGIC_LINK_MAX_PENDING",
            "FAVSYNC_MAIL_PORT",
            "FAVSYNC_MAIL_TIMEOUT",
            "FAVSYNC_MAX_FAVORITES",
            "FAVSYNC_MAX_BODY_BYTES",
            "FAVSYNC_TOMBSTONE_DAYS",
            "FAVSYNC_REFRESH_TOKEN_TTL",
        ):
            value = getattr(self, key.removeprefix("FAVSYNC_").lower())
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{key} must be a positive whole number, not {value!r}")
        if self.magic_link_url is not None and "{token}" not in self.magic_link_url:
            raise ConfigError("FAVSYNC_MAGIC_LINK_URL must contain '{token}'")
        if not isinstance(self.trusted_proxies, int) or self.trusted_proxies < 0:
            raise ConfigError("FAVSYNC_TRUSTED_PROXIES must be a whole number, 0 or more")
        if self.refresh_cookie_samesite not in SAMESITE_VALUES:
            raise ConfigError(f"FAVSYNC_REFRESH_COOKIE_SAMESITE must be one of {SAMESITE_VALUES}")
        if self.refresh_cookie_samesite == "None" and not self.refresh_cookie_secure:
            raise ConfigError("FAVSYNC_REFRESH_COOKIE_SAMESITE=None needs a Secure cookie")
        if self.jwt_active_kid not in self.jwt_keys:
            raise ConfigError(
                f"FAVSYNC_JWT_ACTIVE_KID {self.jwt_active_kid!r} is not a key of FAVSYNC_JWT_KEYS"
            )
        for origin in self.cors_origins:
            if not origin.startswith(("http://", "https://")) or origin.endswith("/"):
                raise ConfigError(
                    f"FAVSYNC_CORS_ORIGINS holds {origin!r}; origins look like https://homes.example"
                )
        for key in (
            "FAVSYNC_RATELIMIT_MAGIC_LINK_PER_EMAIL",
            "FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP",
            "FAVSYNC_RATELIMIT_VERIFY_CODE_PER_IP",
            "FAVSYNC_RATELIMIT_EMAILS_GLOBAL",
        ):
            try:
                parse_rate(getattr(self, key.removeprefix("FAVSYNC_").lower()))
            except ValueError as exc:
                raise ConfigError(f"{key} is not a rate limit such as '10 per hour': {exc}") from None


def _key_ring(config, secret_key: str) -> dict:
    """The keys auth tokens may be signed with, by key id.

    Without FAVSYNC_JWT_KEYS: one key, FAVSYNC_JWT_SECRET_KEY (else the secret
    key), and tokens carry no key id. With it, tokens without a key id verify
    only while FAVSYNC_JWT_SECRET_KEY is still set (the pre-rotation key).
    """
    keys = config["FAVSYNC_JWT_KEYS"]
    if keys is None:
        return {None: config["FAVSYNC_JWT_SECRET_KEY"] or secret_key}
    if isinstance(keys, str):
        keys = _parse("FAVSYNC_JWT_KEYS", keys, None)
    if (
        not isinstance(keys, dict)
        or not keys
        or not all(isinstance(k, str) and k and isinstance(v, str) and len(v) >= 32
                   for k, v in keys.items())
    ):
        raise ConfigError(
            "FAVSYNC_JWT_KEYS must map key ids to secrets of at least 32 characters"
        )
    ring = dict(keys)
    if config["FAVSYNC_JWT_SECRET_KEY"]:
        ring[None] = config["FAVSYNC_JWT_SECRET_KEY"]
    return ring


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

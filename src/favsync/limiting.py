"""Request-rate shields on Flask-Limiter's storage (Redis in production).

The hard rule, three pending links per email, is database state and is
decided in links.py; these limits only blunt floods of requests.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import time

from flask import Flask, request
from flask_limiter import Limiter
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from .config import Settings
from .errors import rate_limited
from .state import settings

log = logging.getLogger("favsync.limits")


class RequestLimits:
    """favsync's own Flask-Limiter for one app, checked explicitly from views."""

    def __init__(self, settings: Settings) -> None:
        # Flask-Limiter configures itself from the app it is given (every RATELIMIT_*
        # key) and hooks that app's requests. favsync gives it a private app holding
        # only favsync's settings: a host's limiter settings never change favsync's
        # limits, and favsync's limiter never touches a host route. favsync's views
        # call hit_magic_link() with keys they have validated first.
        settings_app = Flask("favsync.limits")
        self.limiter = Limiter(
            lambda: request.remote_addr or "unknown",
            storage_uri=settings.ratelimit_storage_uri,
            strategy="moving-window",
            headers_enabled=False,
            swallow_errors=False,
            key_prefix=settings.ratelimit_key_prefix,
        )
        self.limiter.init_app(settings_app)
        # While the shared storage is down, each process limits on its own
        # rather than letting every request through or refusing them all.
        self._fallback = MovingWindowRateLimiter(MemoryStorage())
        self.key_prefix = settings.ratelimit_key_prefix  # several apps can share one Redis
        self._key = settings.secret_key.encode()
        self.magic_link_per_email = parse_many(settings.ratelimit_magic_link_per_email)
        self.magic_link_per_ip = parse_many(settings.ratelimit_magic_link_per_ip)
        self.verify_code_per_ip = parse_many(settings.ratelimit_verify_code_per_ip)
        self.emails_global = parse_many(settings.ratelimit_emails_global)
        self.message_token_failures_per_ip = parse_many(
            settings.ratelimit_message_token_failures_per_ip)

    def hit_magic_link(self, email: str, ip: str | None) -> None:
        """Count one magic-link request; raise 429 when the mailbox or the IP is over its rate."""
        # Keyed hash: limiter keys live in Redis, where an address must not be
        # readable, nor matched by hashing a guessed address.
        email_key = hmac.new(self._key, mailbox(email).encode(), "sha256").hexdigest()[:32]
        self._hit(self.magic_link_per_email, "magic-link-email", email_key)
        self._hit(self.magic_link_per_ip, "magic-link-ip", ip or "unknown")

    def hit_code_attempt(self, ip: str) -> None:
        """Count one typed-code attempt from an IP; raise 429 over its rate."""
        self._hit(self.verify_code_per_ip, "verify-code-ip", ip)

    def hit_email_sent(self) -> None:
        """Count one email against the global cap that protects the mail quota."""
        self._hit(self.emails_global, "emails", "all")

    def check_message_token_failures(self, ip: str) -> None:
        """Raise 429 while `ip` has used up its failed message-token sign-ins."""
        self._hit(self.message_token_failures_per_ip, "message-token-ip", ip, only_check=True)

    def hit_message_token_failure(self, ip: str) -> None:
        """Count one failed message-token sign-in from `ip`; raise 429 over its rate."""
        self._hit(self.message_token_failures_per_ip, "message-token-ip", ip)

    def storage_reachable(self) -> bool:
        try:
            return bool(self.limiter.storage.check())
        except Exception:
            return False

    def _hit(self, items: list, scope: str, key: str, *, only_check: bool = False) -> None:
        for item in items:  # e.g. 10 per hour, then 20 per day
            self._hit_one(item, scope, key, only_check=only_check)

    def _hit_one(self, item, scope: str, key: str, *, only_check: bool) -> None:
        """Count a hit (or, only_check, count nothing) and raise 429 when over the rate."""
        identifiers = (self.key_prefix, scope, key)
        strategy = self.limiter.limiter
        try:
            allowed = (strategy.test if only_check else strategy.hit)(item, *identifiers)
        except Exception as exc:  # the storage's own errors (redis, memcached, ...)
            log.warning("rate-limit storage unavailable (%s); limiting per process",
                        exc.__class__.__name__)
            strategy = self._fallback
            allowed = (strategy.test if only_check else strategy.hit)(item, *identifiers)
        if allowed:
            return
        reset_at = strategy.get_window_stats(item, *identifiers).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise rate_limited(str(item), retry_after)


def mailbox(email: str) -> str:
    """The mailbox an address reaches: local+tag@domain is local@domain.

    Only rate limits fold tags: the pending-links rule and the stored email keep
    the address as typed.
    """
    local, _, domain = email.rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def client_ip() -> str:
    """The client's address as a rate-limit key: behind N trusted proxies, the Nth
    from the right in X-Forwarded-For (each proxy appends the address it saw);
    without them, the socket's peer, never a header a client could forge."""
    trusted = settings().trusted_proxies
    address = request.remote_addr or "unknown"
    if trusted:
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
        hops = [hop for hop in hops if hop]
        if len(hops) >= trusted:
            address = hops[-trusted]
    return _limit_key(address)


def _limit_key(address: str) -> str:
    """An IPv6 visitor usually holds a whole /64: limit the network, not one address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)

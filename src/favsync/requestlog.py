"""One log line per request, with a request id, and no secrets in it."""
from __future__ import annotations

import logging
import re
import secrets
import time

from flask import Flask, g, request

log = logging.getLogger("favsync.requests")

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Magic-link secrets and message tokens travel in the verify URL, signed clients in
# unsubscribe URLs; logs must never hold them, nor anything after them
# (/verify//<secret> routes nowhere, but is a secret too).
SECRET_IN_PATH = re.compile(r"(/verify/|/unsubscribe/).*")


def mask_email(address: str) -> str:
    """Turn visitor@example.com into v***@example.com for logs."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_path(path: str) -> str:
    return SECRET_IN_PATH.sub(r"\1***", path)


def init_request_log(app: Flask) -> None:
    """Log each request once, tagged with X-Request-ID (taken if sane, else made)."""

    @app.before_request
    def start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else secrets.token_hex(16)
        g.request_started = time.perf_counter()

    @app.after_request
    def finish(response):
        request_id = g.get("request_id") or secrets.token_hex(16)
        response.headers["X-Request-ID"] = request_id
        elapsed = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
        log.info(
            "%s %s %s %s %.1fms",
            request_id, request.method, mask_path(request.path), response.status_code, elapsed,
        )
        return response

"""One log line per request, with a request id, and no secrets in it."""
from __future__ import annotations

import itertools
import logging
import os
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
    if "/verify/" not in path and "/unsubscribe/" not in path:  # most paths: no regex
        return path
    return SECRET_IN_PATH.sub(r"\1***", path)


# A request id is unique, not secret: this process's random prefix and a counter
# (16 random bytes per request cost a system call each). A forked worker draws its own.
_request_counter = itertools.count()
_process_prefix = secrets.token_hex(8)


def _draw_process_prefix() -> None:
    global _process_prefix
    _process_prefix = secrets.token_hex(8)


os.register_at_fork(after_in_child=_draw_process_prefix)


def new_request_id() -> str:
    return f"{_process_prefix}{next(_request_counter):016x}"


def init_request_log(app: Flask) -> None:
    """Log each request once, tagged with X-Request-ID (taken if sane, else made)."""

    @app.before_request
    def start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else new_request_id()
        g.request_started = time.perf_counter()

    @app.after_request
    def finish(response):
        request_id = g.get("request_id") or new_request_id()
        response.headers["X-Request-ID"] = request_id
        elapsed = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
        log.info(
            "%s %s %s %s %.1fms",
            request_id, request.method, mask_path(request.path), response.status_code, elapsed,
        )
        return response

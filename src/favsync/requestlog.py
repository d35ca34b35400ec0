"""One log line per request, with a request id, and no secrets in it."""
from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from urllib.parse import unquote

from flask import Flask
from werkzeug.wsgi import get_path_info

from .guards import NOSNIFF

log = logging.getLogger("favsync.requests")

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_REQUEST_ID_HEADER = "X-Request-ID"
# Magic-link secrets and message tokens travel in the verify URL, signed clients in
# unsubscribe URLs; logs must never hold them, nor anything after them
# (/verify//<secret> routes nowhere, but is a secret too).
SECRET_PATHS = ("/verify/", "/unsubscribe/")
_SECRET_PATH = "|".join(map(re.escape, SECRET_PATHS))
SECRET_IN_PATH = re.compile(f"({_SECRET_PATH}).*")
# A request line ("GET /path?query HTTP/1.1", percent-decoded first: the server routes
# /verify%2F<secret> as /verify/<secret>): the rest of such a URL up to the protocol
# (or a terminal colour's escape), and a token= in the query (the demo's landing
# page for a sign-in link, a message's links on a host's site).
_URL_ENDS = r" HTTP/\d|\x1b|$"
SECRET_IN_REQUEST_LINE = re.compile(
    rf"({_SECRET_PATH}).*?(?={_URL_ENDS})|([?&;]token=)[^&;]*?(?=[&;]|{_URL_ENDS})"
)


def mask_email(address: str) -> str:
    """Turn visitor@example.com into v***@example.com for logs."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_path(path: str) -> str:
    # Searched first: a sub with a template makes Python calls even where nothing
    # matches, and most paths hold no secret.
    if SECRET_IN_PATH.search(path) is None:
        return path
    return SECRET_IN_PATH.sub(r"\1***", path)


def mask_request_line(line: str) -> str:
    return SECRET_IN_REQUEST_LINE.sub(lambda found: f"{found[1] or found[2]}***", unquote(line))


class _RequestLinesMasked(logging.Filter):
    """Masks the secrets in the request lines a server logs (werkzeug's: its arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask_request_line(arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


_REQUEST_LINES_MASKED = _RequestLinesMasked()


def mask_development_server_log() -> None:
    """Keep favsync's secrets out of the log of werkzeug's development server (`make run`,
    or a site's `flask run` with favsync in it): one line per request, its URL whole.

    Process-wide (that logger is), and once however many apps ask.
    """
    logging.getLogger("werkzeug").addFilter(_REQUEST_LINES_MASKED)


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
    """Log each request once, tagged with X-Request-ID (taken if sane, else made), and
    keep every answer of the app from content sniffing (the health probes' too)."""
    app.wsgi_app = RequestLog(app.wsgi_app)


class RequestLog:
    """WSGI middleware around the whole app: a request id on every answer, and its log line.

    Not Flask hooks: this runs for every request of the app, where a pair of hooks,
    their dispatch and the request proxies cost more than the line (BENCHMARKS.md).
    """

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response):
        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")  # _REQUEST_ID_HEADER, as WSGI names it
        request_id = incoming if REQUEST_ID.fullmatch(incoming) else new_request_id()

        def answered(status: str, headers: list, exc_info=None):
            headers = _with_request_id(headers, request_id)
            log.info("%s %s %s %s %.1fms", request_id, environ.get("REQUEST_METHOD"),
                     mask_path("/" + get_path_info(environ).lstrip("/")), status[:3],
                     (time.perf_counter() - started) * 1000)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, answered)


_REQUEST_ID_NAME = _REQUEST_ID_HEADER.lower()
_NOSNIFF_NAME = NOSNIFF[0].lower()


def _with_request_id(headers: list, request_id: str) -> list:
    """The answer's headers with this request's id (in place of any the app set) and,
    unless the app chose its own, no content sniffing."""
    names = [name.lower() for name, _ in headers]  # each name lowered once, not per question
    if _REQUEST_ID_NAME in names:  # rare: an app that sets its own
        headers = [header for header, name in zip(headers, names) if name != _REQUEST_ID_NAME]
    else:
        headers = list(headers)
    if _NOSNIFF_NAME not in names:
        headers.append(NOSNIFF)
    headers.append((_REQUEST_ID_HEADER, request_id))
    return headers

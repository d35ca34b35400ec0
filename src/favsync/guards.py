"""What favsync demands of every request, and adds to every answer.

Trusted hosts (the host chooses the brokerage), the body size limit, requests
that may use the refresh cookie, and the headers that keep answers out of
caches and content sniffers.
"""
from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import Blueprint, Response, after_this_request, request
from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wsgi import get_content_length

from .cors import add_cors_headers
from .errors import json_required, origin_not_allowed, unknown_host
from .state import settings


def protect(bp: Blueprint) -> None:
    """Guard every request to `bp` and add favsync's headers to every answer.

    One hook each way: Flask's per-hook dispatch costs more than what they do.
    """
    bp.before_request(guard_request)
    bp.after_request(finish_answer)


def guard_request() -> None:
    """Refuse a Host header outside FAVSYNC_TRUSTED_HOSTS (unset: debug and testing only),
    and bodies over FAVSYNC_MAX_BODY_BYTES."""
    current = settings()
    asked = request._get_current_object()  # not each attribute through the proxy
    if current.trusted_hosts and not _trusted(asked.host, current.trusted_hosts):
        raise unknown_host(asked.host)
    # Per request, so that favsync's limit and a host's (its config's, or one it set
    # on this request) never change each other. Given a limit, werkzeug reads every
    # body through a stream that enforces it in two zeroed 64 KiB buffers, which cost
    # a sync more than its JSON; so it is left unset for a body of a declared length
    # within it, under no other limit: the server stops reading at that length.
    # Chunked bodies, longer ones and a malformed length (werkzeug reads it as 0)
    # get the limit. The length from the environ, as werkzeug reads it for the
    # stream: `asked.content_length` raises and catches a KeyError per absent header.
    length = get_content_length(asked.environ)
    if not length or length > current.max_body_bytes or asked.max_content_length is not None:
        asked.max_content_length = current.max_body_bytes


@functools.lru_cache(maxsize=1024)
def _trusted(host: str, trusted_hosts: frozenset) -> bool:
    # Remembered: werkzeug encodes the host to IDNA on every call, and a site has few hosts.
    return host_is_trusted(host, trusted_hosts)


def finish_answer(response: Response) -> Response:
    """CORS for the listed origins, and no content sniffing."""
    return add_security_headers(add_cors_headers(response))


NOSNIFF = ("X-Content-Type-Options", "nosniff")


def add_security_headers(response: Response) -> Response:
    """No content sniffing of any favsync answer."""
    response.headers[NOSNIFF[0]] = NOSNIFF[1]
    return response


def not_stored() -> None:
    """Keep this request's answer out of every cache (it belongs to one signed-in client)."""
    after_this_request(_no_store)


def _no_store(response: Response) -> Response:
    # Not a closure made per request: Flask checks each new function for a coroutine.
    # A view that sets its own (private, no-cache with an ETag) keeps it. Looked for
    # by name, not by werkzeug's setdefault or `in`: when absent (most answers) they
    # raise and catch a BadRequestKeyError, which cost more than the whole hook.
    for name, _ in response.headers:
        if name.lower() == "cache-control":
            return response
    response.headers.add("Cache-Control", "no-store")
    return response


def same_site_only(view):
    """Let only the site (or a listed origin) make a request that the refresh cookie authenticates.

    A page of any site can POST a form or text/plain body with the visitor's
    cookies and without a preflight; a JSON request needs one, which CORS
    grants only to FAVSYNC_CORS_ORIGINS. An Origin header, when sent, must be
    this API's own or a listed one.
    """

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        origin = request.headers.get("Origin")
        if origin is not None and not _allowed_origin(origin):
            raise origin_not_allowed(origin)
        if not request.is_json:
            raise json_required()
        return view(*args, **kwargs)

    return guarded


def _allowed_origin(origin: str) -> bool:
    if origin in settings().cors_origins:
        return True
    # Its own origin: the host the request was sent to (behind a TLS proxy the
    # scheme seen here may differ from the browser's, so only the host is compared).
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()

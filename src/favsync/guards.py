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

from .cors import add_cors_headers
from .errors import json_required, origin_not_allowed, unknown_host
from .state import settings


def protect(bp: Blueprint) -> None:
    """Guard every request to `bp` and add favsync's headers to every answer."""
    bp.before_request(limit_body_size)
    bp.before_request(require_trusted_host)
    bp.after_request(add_cors_headers)
    bp.after_request(add_security_headers)


def limit_body_size() -> None:
    # Per request, so favsync's limit never changes the host's MAX_CONTENT_LENGTH.
    request.max_content_length = settings().max_body_bytes


def require_trusted_host() -> None:
    """Refuse a Host header outside FAVSYNC_TRUSTED_HOSTS (unset: debug and testing only)."""
    trusted = settings().trusted_hosts
    if trusted and not host_is_trusted(request.host, trusted):
        raise unknown_host(request.host)


def add_security_headers(response: Response) -> Response:
    """No content sniffing of any favsync answer."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def not_stored() -> None:
    """Keep this request's answer out of every cache (it belongs to one signed-in client)."""

    @after_this_request
    def no_store(response: Response) -> Response:
        # A view that sets its own (private, no-cache with an ETag) keeps it.
        response.headers.setdefault("Cache-Control", "no-store")
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

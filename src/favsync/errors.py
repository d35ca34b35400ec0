"""favsync's errors: the JSON envelope, one named constructor per error, the handlers.

Domain code raises these constructors; HTTP status codes live here and nowhere else.
"""
from __future__ import annotations

import logging

import sqlalchemy.exc
from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

log = logging.getLogger("favsync")

# Registered by exact code on favsync's blueprint, because a host's
# errorhandler(429) would otherwise beat a blueprint's errorhandler(HTTPException).
HANDLED_CODES = (400, 401, 403, 404, 405, 406, 410, 413, 415, 422, 429, 500, 503)


class ApiError(Exception):
    """An error favsync answers with its JSON envelope."""

    def __init__(self, status: int, code: str, message: str, *, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def _retry_after(seconds: int) -> dict:
    return {"Retry-After": str(seconds)}


# -- 400 ------------------------------------------------------------------------

def invalid_json(message: str = "The request body must be a JSON object.") -> ApiError:
    return ApiError(400, "invalid_json", message)


def validation_error(details: list[dict]) -> ApiError:
    return ApiError(400, "validation_error", "The request is not valid.", details=details)


def invalid_token() -> ApiError:
    return ApiError(400, "invalid_token", "This sign-in link is not valid.")


def invalid_unsubscribe_link() -> ApiError:
    return ApiError(400, "invalid_token", "This unsubscribe link is not valid.")


def invalid_code() -> ApiError:
    # The same answer whether or not the email has pending links.
    return ApiError(400, "invalid_code", "That code is not right or has expired; check the email.")


# -- 401 ------------------------------------------------------------------------

def unauthorized(message: str, code: str = "unauthorized") -> ApiError:
    """A 401 with the WWW-Authenticate challenge every 401 must carry."""
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def invalid_refresh_token(message: str = "The refresh token is not valid; sign in again.") -> ApiError:
    return unauthorized(message, "invalid_refresh_token")


def refresh_token_reused() -> ApiError:
    return unauthorized("This session was ended; sign in again.", "refresh_token_reused")


def invalid_api_key(message: str) -> ApiError:
    """A 401 for brokerage servers, whose credential is the X-API-Key header."""
    return ApiError(401, "invalid_api_key", message,
                    headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})


# -- 403, 404 ---------------------------------------------------------------------

def already_sent() -> ApiError:
    return ApiError(403, "already_sent", "This message is being or was sent; it cannot be cancelled.")


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


# -- 410 ------------------------------------------------------------------------

def token_used() -> ApiError:
    return ApiError(410, "token_used", "This sign-in link was already used; request a new one.")


def token_expired() -> ApiError:
    return ApiError(410, "token_expired", "This sign-in link has expired; request a new one.")


def too_many_attempts() -> ApiError:
    return ApiError(
        410,
        "too_many_attempts",
        "Too many wrong codes: this sign-in email no longer works; request a new one.",
    )


# -- 422, 429 -------------------------------------------------------------------

def too_many_favorites(limit: int, count: int) -> ApiError:
    return ApiError(
        422,
        "too_many_favorites",
        f"A client can keep at most {limit} favourites; this sync would make {count}.",
    )


def too_many_sent(limit: int, count: int) -> ApiError:
    return ApiError(
        422, "too_many_favorites", f"A sync sends at most {limit} ids; this one sent {count}."
    )


def no_default_agent() -> ApiError:
    return ApiError(
        422, "no_default_agent",
        "Some of the listing's favouriters have no agent and the brokerage has no default "
        "agent to send their alerts: add one (flask favsync agent add --default).",
    )


def too_many_pending_links(max_pending: int, retry_after: int) -> ApiError:
    return ApiError(
        429,
        "too_many_pending_links",
        f"This email already has {max_pending} unused sign-in links; "
        "use one of them or try again later.",
        headers=_retry_after(retry_after),
    )


def rate_limited(limit: str, retry_after: int) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"Too many sign-in requests ({limit}); try again in {retry_after} seconds.",
        headers=_retry_after(retry_after),
    )


# -- 503 ------------------------------------------------------------------------

def database_unavailable() -> ApiError:
    return ApiError(
        503, "database_unavailable", "The database is unavailable; try again shortly.",
        headers=_retry_after(5),
    )


def not_configured() -> ApiError:
    return ApiError(503, "not_configured", "No brokerage is configured; run the migrations.")


# -- handlers -------------------------------------------------------------------

def error_response(error: ApiError):
    body = {"code": error.code, "message": error.message, "details": error.details}
    response = jsonify(success=False, error=body)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _code_for(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def handle_http_exception(exc: HTTPException):
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return error_response(
        ApiError(exc.code or 500, _code_for(exc), exc.description or exc.name, headers=headers)
    )


def handle_database_error(exc: sqlalchemy.exc.OperationalError):
    log.warning("database unavailable: %s", exc.orig.__class__.__name__)
    return error_response(database_unavailable())


def handle_unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    log.exception("unhandled error")
    return error_response(ApiError(500, "internal_error", "Something went wrong on our side."))


def register(target: Blueprint | Flask) -> None:
    """Answer every error raised under `target` with the JSON envelope."""
    target.register_error_handler(ApiError, error_response)
    target.register_error_handler(sqlalchemy.exc.OperationalError, handle_database_error)
    for code in HANDLED_CODES:
        target.register_error_handler(code, handle_unexpected)
    target.register_error_handler(HTTPException, handle_http_exception)
    target.register_error_handler(Exception, handle_unexpected)


# -- the catch-all for URLs no favsync route matched ----------------------------

# Routing errors never reach blueprint error handlers, so inside a host a wrong
# URL or method under favsync's prefix would get the host's (HTML) 404 or 405.
# These routes catch what no favsync route matched and answer in favsync's JSON.
UNROUTED = "unrouted"
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"]


def add_catch_all(bp: Blueprint, roots: tuple[str, ...] = ()) -> None:
    """Route every other URL and method under `bp` to a JSON 404 or 405; given `roots`,
    only the URLs below those paths (the blueprint shares its prefix with a host)."""
    if not roots:
        bp.add_url_rule("", UNROUTED, _unrouted, methods=["POST", "PUT", "PATCH", "DELETE", "TRACE"])
        bp.add_url_rule("/", UNROUTED, _unrouted, methods=ANY_METHOD)
    for root in roots or ("",):
        bp.add_url_rule(f"{root}/<path:_path>", UNROUTED, _unrouted, methods=ANY_METHOD)


def _unrouted(_path: str = ""):
    """Raise 405 if another method would match this URL, else 404."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = [method for method in ANY_METHOD if _routes_elsewhere(adapter, method)]
    if allowed:
        raise MethodNotAllowed(valid_methods=allowed)
    raise NotFound()


def _routes_elsewhere(adapter, method: str) -> bool:
    try:
        endpoint, _ = adapter.match(method=method)
    except HTTPException:
        return False
    return endpoint != f"{request.blueprint}.{UNROUTED}"

"""favsync's errors: the JSON envelope, one named constructor per error, the handlers.

Domain code raises these constructors; HTTP status codes live here and nowhere else.
"""
from __future__ import annotations

import logging

import sqlalchemy.exc
from flask import Blueprint, Flask, current_app, jsonify, request
from flask.sansio.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from .mounting import mount_root

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


def unknown_host(host: str) -> ApiError:
    return ApiError(
        400, "unknown_host", f"This service does not answer on {host!r} (see FAVSYNC_TRUSTED_HOSTS)."
    )


# -- 401 ------------------------------------------------------------------------

def unauthorized(message: str, code: str = "unauthorized") -> ApiError:
    """A 401 with the WWW-Authenticate challenge every 401 must carry."""
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def token_no_longer_valid() -> ApiError:
    """A well-signed auth token whose client, brokerage or session is gone (or logged out)."""
    return unauthorized("The auth token is no longer valid here; sign in again.")


def invalid_refresh_token(message: str = "The refresh token is not valid; sign in again.") -> ApiError:
    return unauthorized(message, "invalid_refresh_token")


def refresh_token_reused() -> ApiError:
    return unauthorized("This session was ended; sign in again.", "refresh_token_reused")


def invalid_api_key(message: str) -> ApiError:
    """A 401 for brokerage servers, whose credential is the X-API-Key header."""
    return ApiError(401, "invalid_api_key", message,
                    headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})


# -- 403 ------------------------------------------------------------------------

def already_sent() -> ApiError:
    return ApiError(403, "already_sent", "This message is being or was sent; it cannot be cancelled.")


def json_required() -> ApiError:
    # A page of any site can send a form or text/plain POST without a preflight;
    # only a JSON one must be let through by CORS first.
    return ApiError(
        403, "json_required",
        "Send this request with 'Content-Type: application/json' (the body may be empty).",
    )


def origin_not_allowed(origin: str) -> ApiError:
    return ApiError(
        403, "origin_not_allowed",
        f"Requests from {origin!r} may not use the refresh cookie (see FAVSYNC_CORS_ORIGINS).",
    )


# -- 404 ------------------------------------------------------------------------

def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


# -- 410 ------------------------------------------------------------------------

def token_used() -> ApiError:
    return ApiError(
        410, "token_used",
        "This sign-in link was already used, perhaps in another browser; sign in again here.",
    )


def token_expired() -> ApiError:
    return ApiError(410, "token_expired", "This sign-in link has expired; request a new one.")


def code_used() -> ApiError:
    return ApiError(
        410, "code_used",
        "This code was already used to sign in, perhaps in another browser; request a new one here.",
    )


def too_many_attempts() -> ApiError:
    return ApiError(
        410,
        "too_many_attempts",
        "Too many wrong codes: this sign-in email no longer works; request a new one.",
    )


# -- 422, 429 -------------------------------------------------------------------

def unprocessable_body(problems: list[dict]) -> ApiError:
    """Seed 002's validation error: pydantic's own items (loc, msg, type, input, ctx)."""
    return ApiError(422, "validation_error", "The request is not valid.", details=problems)


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
    """favsync's envelope: {"success": false, "error": {"code", "message", "details"}}."""
    body = {"code": error.code, "message": error.message, "details": error.details}
    response = jsonify(success=False, error=body)
    return _with_status(response, error)


def detail_response(error: ApiError):
    """Seed 002's (FastAPI's) shape: {"detail": [problems]} or {"detail": "message"}."""
    return _with_status(jsonify(detail=error.details or error.message), error)


def _with_status(response, error: ApiError):
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _code_for(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def as_api_error(exc: Exception) -> ApiError:
    """The ApiError that answers `exc`, whatever was raised."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, HTTPException):
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return ApiError(exc.code or 500, _code_for(exc), exc.description or exc.name, headers=headers)
    if isinstance(exc, sqlalchemy.exc.OperationalError):
        log.warning("database unavailable: %s", exc.orig.__class__.__name__)
        return database_unavailable()
    log.exception("unhandled error")
    return ApiError(500, "internal_error", "Something went wrong on our side.")


def register(target: Blueprint | Flask, render=error_response) -> None:
    """Answer every error raised under `target` in one JSON shape (`render`'s)."""

    def handle(exc: Exception):
        return render(as_api_error(exc))

    # Exception covers every class (a blueprint's handlers are searched before the
    # app's); the codes beat a host's handlers for them.
    for kind in (*HANDLED_CODES, Exception):
        target.register_error_handler(kind, handle)


# -- the catch-all for URLs no favsync route matched ----------------------------

# Routing errors never reach blueprint error handlers, so inside a host a wrong
# URL or method under favsync's prefix would get the host's (HTML) 404 or 405.
# These routes catch what no favsync route matched and answer in favsync's JSON.
UNROUTED = "unrouted"
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"]
ALLOW_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "TRACE"]


def add_catch_all(bp: Blueprint, roots: tuple[str, ...] = ()) -> None:
    """Route every other URL and method under `bp` to a JSON 404 or 405; answer OPTIONS.

    Given `roots`, only the URLs below those paths (the blueprint shares its prefix
    with a host's pages).
    """
    bp.record(lambda state: _add_catch_all(state, roots))
    bp.before_request(_answer_options)


def _add_catch_all(state: BlueprintSetupState, roots: tuple[str, ...]) -> None:
    if roots:
        for root in roots:
            state.add_url_rule(f"{root}/<path:_path>", UNROUTED, _unrouted, methods=ANY_METHOD)
        return
    root = mount_root(state)
    # GET on the root is the favourites list.
    state.add_url_rule(root, UNROUTED, _unrouted, methods=[m for m in ANY_METHOD if m != "GET"])
    if root == "":  # under a prefix, "<prefix>/" is another URL, and no route of favsync's
        state.add_url_rule("/", UNROUTED, _unrouted, methods=ANY_METHOD)
    state.add_url_rule("/<path:_path>", UNROUTED, _unrouted, methods=ANY_METHOD)


def _unrouted(_path: str = ""):
    """Raise 405 if another method would match this URL, else 404."""
    allowed = _allowed_methods()
    if allowed:
        raise MethodNotAllowed(valid_methods=allowed)
    raise NotFound()


def _answer_options():
    """Answer OPTIONS with the methods of favsync's route at this URL, or a JSON 404.

    Werkzeug's automatic answer would list the catch-all's methods too (every one).
    """
    if request._get_current_object().method != "OPTIONS":  # not through the proxy's lookup
        return None
    allowed = _allowed_methods()
    if not allowed:
        raise NotFound()
    response = current_app.response_class(status=204, headers={"Allow": ", ".join(allowed)})
    del response.headers["Content-Type"]  # no body, so no type
    return response


def _allowed_methods() -> list[str]:
    """The methods favsync's own routes answer at this URL (OPTIONS included), or []."""
    adapter = current_app.create_url_adapter(request)  # Flask's, with SERVER_NAME and subdomains
    allowed = [method for method in ALLOW_ORDER if _routes_elsewhere(adapter, method)]
    return [*allowed, "OPTIONS"] if allowed else []


def _routes_elsewhere(adapter, method: str) -> bool:
    try:
        endpoint, _ = adapter.match(method=method)
    except HTTPException:
        return False
    return not endpoint.endswith(f".{UNROUTED}")

"""The JSON error envelope, and the handlers that put every error under favsync into it."""
from __future__ import annotations

import logging

import sqlalchemy.exc
from flask import Blueprint, Flask, jsonify
from werkzeug.exceptions import HTTPException

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


def unauthorized(message: str, code: str = "unauthorized") -> ApiError:
    """A 401 with the WWW-Authenticate challenge every 401 must carry."""
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def validation_error(details: list[dict]) -> ApiError:
    return ApiError(400, "validation_error", "The request is not valid.", details=details)


def too_many_favorites(limit: int, count: int) -> ApiError:
    return ApiError(
        422,
        "too_many_favorites",
        f"A client can keep at most {limit} favourites; this sync would make {count}.",
    )


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
    return error_response(
        ApiError(503, "database_unavailable", "The database is unavailable; try again shortly.",
                 headers={"Retry-After": "5"})
    )


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

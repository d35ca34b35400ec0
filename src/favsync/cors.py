"""CORS for the brokerage sites listed in FAVSYNC_CORS_ORIGINS, and for no one else."""
from flask import Response, request

from .state import settings

ALLOWED_METHODS = "GET, POST, PUT, DELETE"
ALLOWED_HEADERS = "Authorization, Content-Type, If-None-Match, X-Session-ID, X-Request-ID"
EXPOSED_HEADERS = "ETag, Retry-After, WWW-Authenticate, X-Request-ID"


def add_cors_headers(response: Response) -> Response:
    """Let a listed origin read the answer and send the refresh cookie; others get nothing."""
    origins = settings().cors_origins
    if not origins:
        return response
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if origin not in origins:
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    return response

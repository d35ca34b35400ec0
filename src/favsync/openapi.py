"""Blueprint: the OpenAPI 3.1 document, as this app mounts and configures favsync."""
from __future__ import annotations

import copy
import functools
from importlib.resources import files

import yaml
from flask import Blueprint, url_for
from werkzeug.routing import BuildError

from .schemas import openapi_schemas
from .state import settings

DEFAULT_PREFIX = "/api/v1/favorites"
DEFAULT_AUTH_PREFIX = "/api/auth"  # seed 002's login
DEFAULT_MESSAGES_PREFIX = "/api/v1"  # agent messages, agents, listing events (seed 001)

bp = Blueprint("openapi", __name__)


@functools.cache
def _shipped() -> dict:
    return yaml.safe_load(files("favsync").joinpath("openapi.yaml").read_text())


@functools.cache
def document(prefix: str, auth_prefix: str | None, messages_prefix: str | None,
             max_favorites: int) -> dict:
    """The shipped document with this app's prefixes (what it does not serve left out),
    and schemas with its favourites limit."""
    doc = copy.deepcopy(_shipped())
    paths = {}
    for path, item in doc["paths"].items():
        if path.startswith(DEFAULT_PREFIX):
            # Mounted without a prefix (on a subdomain), the list is at "/".
            paths[(prefix + path.removeprefix(DEFAULT_PREFIX)) or "/"] = item
        elif path.startswith(DEFAULT_AUTH_PREFIX):
            if auth_prefix is not None:
                paths[auth_prefix + path.removeprefix(DEFAULT_AUTH_PREFIX)] = item
        elif messages_prefix is not None:
            paths[messages_prefix + path.removeprefix(DEFAULT_MESSAGES_PREFIX)] = item
    doc["paths"] = paths
    doc["components"]["schemas"] = openapi_schemas(max_favorites)
    return doc


def _mounted(endpoint: str, suffix: str) -> str | None:
    """Where this app serves `endpoint`, less `suffix`; None when it does not."""
    try:
        return url_for(endpoint).removesuffix(suffix)
    except BuildError:
        return None


@bp.get("/openapi.json")
def openapi_document():
    """Return the OpenAPI document for this deployment."""
    prefix = url_for(".openapi_document").removesuffix("/openapi.json")
    return document(
        prefix,
        _mounted("favsync_auth.verify_magic_link_code", "/magic-link/verify"),
        _mounted("favsync_messages.send_message", "/messages"),
        settings().max_favorites,
    )

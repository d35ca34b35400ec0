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
DEFAULT_MESSAGES_PREFIX = "/api/v1"

bp = Blueprint("openapi", __name__)


@functools.cache
def _shipped() -> dict:
    return yaml.safe_load(files("favsync").joinpath("openapi.yaml").read_text())


@functools.cache
def document(prefix: str, max_favorites: int, messages_prefix: str | None = DEFAULT_MESSAGES_PREFIX) -> dict:
    """The shipped document with this app's prefixes (messages_prefix None: the messages API
    is not mounted), and schemas with its favourites limit."""
    doc = copy.deepcopy(_shipped())
    paths = {}
    for path, item in doc["paths"].items():
        if path.startswith(DEFAULT_PREFIX):
            paths[prefix + path.removeprefix(DEFAULT_PREFIX)] = item
        elif messages_prefix is not None:
            paths[messages_prefix + path.removeprefix(DEFAULT_MESSAGES_PREFIX)] = item
    doc["paths"] = paths
    doc["components"]["schemas"] = openapi_schemas(max_favorites)
    return doc


def messages_prefix() -> str | None:
    """Where this app mounted the messages API, or None."""
    try:
        return url_for("favsync_messages.send_message").removesuffix("/messages")
    except BuildError:
        return None


@bp.get("/openapi.json")
def openapi_document():
    """Return the OpenAPI document for this deployment."""
    prefix = url_for(".openapi_document").removesuffix("/openapi.json")
    return document(prefix, settings().max_favorites, messages_prefix())

"""Blueprint: the OpenAPI 3.1 document, as this app mounts and configures favsync."""
from __future__ import annotations

import copy
import functools
from importlib.resources import files

import yaml
from flask import Blueprint, url_for

from .state import settings

DEFAULT_PREFIX = "/api/v1/favorites"

bp = Blueprint("openapi", __name__)


@functools.cache
def _shipped() -> dict:
    return yaml.safe_load(files("favsync").joinpath("openapi.yaml").read_text())


@functools.cache
def document(prefix: str, max_favorites: int) -> dict:
    """The shipped document with this app's prefix and favourites limit."""
    doc = copy.deepcopy(_shipped())
    doc["paths"] = {
        prefix + path.removeprefix(DEFAULT_PREFIX): item for path, item in doc["paths"].items()
    }
    sync = doc["components"]["schemas"]["SyncRequest"]["properties"]
    sync["favorites"]["maxItems"] = sync["removed"]["maxItems"] = max_favorites
    return doc


@bp.get("/openapi.json")
def openapi_document():
    """Return the OpenAPI document for this deployment."""
    prefix = url_for(".openapi_document").removesuffix("/openapi.json")
    return document(prefix, settings().max_favorites)

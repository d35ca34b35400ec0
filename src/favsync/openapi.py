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

bp = Blueprint("openapi", __name__)


@functools.cache
def _shipped() -> dict:
    return yaml.safe_load(files("favsync").joinpath("openapi.yaml").read_text())


@functools.cache
def document(prefix: str, auth_prefix: str | None, max_favorites: int) -> dict:
    """The shipped document with this app's prefixes (seed 002's login left out where it is
    not served), and schemas with its favourites limit."""
    doc = copy.deepcopy(_shipped())
    paths = {}
    for path, item in doc["paths"].items():
        if path.startswith(DEFAULT_PREFIX):
            # Mounted without a prefix (on a subdomain), the list is at "/".
            paths[(prefix + path.removeprefix(DEFAULT_PREFIX)) or "/"] = item
        elif auth_prefix is not None:
            paths[auth_prefix + path.removeprefix(DEFAULT_AUTH_PREFIX)] = item
    doc["paths"] = paths
    doc["components"]["schemas"] = openapi_schemas(max_favorites)
    return doc


def seed_login_prefix() -> str | None:
    """Where this app serves seed 002's login, or None."""
    try:
        return url_for("favsync_auth.verify_magic_link_code").removesuffix("/magic-link/verify")
    except BuildError:
        return None


@bp.get("/openapi.json")
def openapi_document():
    """Return the OpenAPI document for this deployment."""
    prefix = url_for(".openapi_document").removesuffix("/openapi.json")
    return document(prefix, seed_login_prefix(), settings().max_favorites)

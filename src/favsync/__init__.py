"""favsync: passwordless, cross-device favourites for real-estate sites."""
from __future__ import annotations

import functools
import os
from typing import Any, Mapping

from flask import Flask
from flask_migrate import Migrate

from . import errors, frontend
from .auth import CurrentClient, current_client, seed_bp as auth_blueprint
from .config import load_environment
from .database import MIGRATIONS_DIRECTORY, include_name
from .extension import FavSync, api as blueprint, messages_api as messages_blueprint
from .hooks import Profile
from .signals import client_verified, favorites_changed
from .state import EXTENSION_KEY
from .sync import listing_ids as favorites_of

__all__ = [
    "CurrentClient",
    "FavSync",
    "Profile",
    "auth_blueprint",
    "blueprint",
    "client_verified",
    "create_app",
    "current_client",
    "favorites_changed",
    "favorites_of",
    "include_name",
    "messages_blueprint",
]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the standalone favsync service, configured from FAVSYNC_* variables."""
    instance = os.environ.get("FAVSYNC_INSTANCE_PATH", "instance")
    app = _Service(__name__, instance_path=os.path.abspath(instance))
    load_environment(app.config)
    app.config.update(config or {})
    FavSync(app, operations=True)
    if app.extensions[EXTENSION_KEY].settings.demo:
        app.register_blueprint(frontend.demo)  # the demo site at /, never by default in production
    Migrate(app, app.extensions[EXTENSION_KEY].db, directory=MIGRATIONS_DIRECTORY)
    errors.register(app)  # standalone: unknown URLs and methods get JSON too
    return app


class _Service(Flask):
    """The standalone service's Flask app.

    Flask asks, before it calls any view or hook, whether the function is a coroutine
    function (`ensure_sync`), through several calls into `inspect`: seven times a
    request here. The answer for a function never changes, so it is remembered.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Bounded: after_this_request makes a new function (a closure, kept until it
        # is pushed out) each request it is used.
        self.ensure_sync = functools.lru_cache(maxsize=256)(super().ensure_sync)

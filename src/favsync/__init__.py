"""favsync: passwordless, cross-device favourites for real-estate sites."""
from __future__ import annotations

import os
from typing import Any, Mapping

from flask import Flask
from flask_migrate import Migrate

from . import errors, health
from .config import load_environment
from .database import MIGRATIONS_DIRECTORY, include_name
from .extension import FavSync, api as blueprint, messages_api as messages_blueprint
from .requestlog import init_request_log
from .signals import client_verified, favorites_changed
from .state import EXTENSION_KEY

__all__ = [
    "FavSync",
    "blueprint",
    "client_verified",
    "create_app",
    "favorites_changed",
    "include_name",
    "messages_blueprint",
]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the standalone favsync service, configured from FAVSYNC_* variables."""
    instance = os.environ.get("FAVSYNC_INSTANCE_PATH", "instance")
    app = Flask(__name__, instance_path=os.path.abspath(instance))
    load_environment(app.config)
    app.config.update(config or {})
    FavSync(app)
    Migrate(app, app.extensions[EXTENSION_KEY].db, directory=MIGRATIONS_DIRECTORY)
    app.register_blueprint(health.bp)
    errors.register(app)  # standalone: unknown URLs and methods get JSON too
    init_request_log(app)
    return app

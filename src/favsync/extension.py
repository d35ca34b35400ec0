"""FavSync, the Flask extension: wires configuration, database, limits, mail and routes."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, request
from flask_sqlalchemy import SQLAlchemy
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from . import auth, errors, favorites, openapi
from .cors import add_cors_headers
from .cli import favsync_cli
from .config import Settings
from .database import Base
from .limiting import RequestLimits
from .mail import Mailer

log = logging.getLogger("favsync")

api = Blueprint("favsync", __name__, template_folder="templates")
api.register_blueprint(auth.bp)
api.register_blueprint(favorites.bp)
api.register_blueprint(openapi.bp)
errors.register(api)
api.after_request(add_cors_headers)


# Routing errors never reach blueprint error handlers, so inside a host a wrong
# URL or method under favsync's prefix would get the host's (HTML) 404 or 405.
# These routes catch what no favsync route matched and answer in favsync's JSON.
UNROUTED = "unrouted"
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"]


@api.route("", endpoint=UNROUTED, methods=["POST", "PUT", "PATCH", "DELETE", "TRACE"])
@api.route("/", endpoint=UNROUTED, methods=ANY_METHOD)
@api.route("/<path:_path>", endpoint=UNROUTED, methods=ANY_METHOD)
def unrouted(_path: str = ""):
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


@api.before_request
def limit_body_size() -> None:
    # Per request, so favsync's limit never changes the host's MAX_CONTENT_LENGTH.
    request.max_content_length = current_app.extensions["favsync"].settings.max_body_bytes


@dataclass(frozen=True)
class FavSyncState:
    """What favsync keeps per app, in app.extensions["favsync"]."""

    settings: Settings
    db: SQLAlchemy
    limits: RequestLimits
    mailer: Mailer


class FavSync:
    """Favourites sync with magic-link login, as a Flask extension."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy | None = None,
        register_blueprint: bool = True,
    ) -> None:
        self.db = db
        if app is not None:
            self.init_app(app, register_blueprint=register_blueprint)

    def init_app(
        self, app: Flask, *, db: SQLAlchemy | None = None, register_blueprint: bool = True
    ) -> None:
        """Add favsync to `app`, on the host's `db` if given (else its own database).

        With register_blueprint=False the host mounts `favsync.blueprint` itself.
        """
        settings = Settings.from_app(app)
        db = db or self.db or app.extensions.get("sqlalchemy") or _own_database(app, settings)
        app.extensions["favsync"] = FavSyncState(
            settings=settings,
            db=db,
            limits=RequestLimits(settings),
            mailer=Mailer.for_app(app, settings),
        )
        if register_blueprint:
            app.register_blueprint(api, url_prefix=settings.url_prefix)
        app.cli.add_command(favsync_cli)


def _own_database(app: Flask, settings: Settings) -> SQLAlchemy:
    """Give a standalone app its database: FAVSYNC_SQLALCHEMY_DATABASE_URI, else SQLite."""
    uri = settings.sqlalchemy_database_uri
    if uri is None:
        uri = f"sqlite:///{Path(app.instance_path) / 'favsync.sqlite3'}"
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.setdefault("SQLALCHEMY_DATABASE_URI", uri)
    options = {"pool_pre_ping": True}
    if uri.startswith("sqlite"):
        # Writers queue on SQLite's single write lock instead of failing at once.
        options["connect_args"] = {"timeout": 30}
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", options)
    db = SQLAlchemy(metadata=Base.metadata)
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sa.event.listen(db.engine, "connect", _sqlite_pragmas)

    @app.teardown_appcontext  # runs before Flask-SQLAlchemy's own teardown
    def release_session(_exc) -> None:
        try:
            db.session.remove()
        except sa.exc.DBAPIError:
            # The database went away mid-request (a restart, a failover): rolling back
            # on the dead connection fails, so drop it; pre-ping replaces it later.
            log.warning("database connection lost; discarding it")
            db.session().invalidate()
            db.session.remove()

    return db


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers proceed while one writer commits; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()

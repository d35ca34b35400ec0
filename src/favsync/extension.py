"""FavSync, the Flask extension: wires configuration, database, limits, mail and routes."""
from __future__ import annotations

import weakref

import sqlalchemy as sa
from flask import Blueprint, Flask, request
from flask_sqlalchemy import SQLAlchemy

from . import auth, errors, favorites, messages, openapi, outbox, worker
from .cli import favsync_cli
from .config import Settings
from .cors import add_cors_headers
from .database import own_database
from .limiting import RequestLimits
from .mail import Mailer
from .state import EXTENSION_KEY, FavSyncState, settings

api = Blueprint("favsync", __name__, template_folder="templates")
api.register_blueprint(auth.bp)
api.register_blueprint(favorites.bp)
api.register_blueprint(openapi.bp)
api.register_blueprint(messages.preferences)
errors.register(api)
errors.add_catch_all(api)
api.after_request(add_cors_headers)
# Agent messages, agents and listing events: their own prefix (FAVSYNC_MESSAGES_URL_PREFIX).
messages_api = messages.bp
errors.register(messages_api)
errors.add_catch_all(messages_api, roots=("/messages", "/agents", "/listings"))
messages_api.after_request(add_cors_headers)


@api.before_request
@messages_api.before_request
def limit_body_size() -> None:
    # Per request, so favsync's limit never changes the host's MAX_CONTENT_LENGTH.
    request.max_content_length = settings().max_body_bytes


# The databases whose sessions already tell the outbox about commits.
_LISTENING: weakref.WeakSet = weakref.WeakSet()


class FavSync:
    """Favourites sync with magic-link login, as a Flask extension."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy | None = None,
        celery=None,
        register_blueprint: bool = True,
    ) -> None:
        self.db = db
        self.celery = celery
        if app is not None:
            self.init_app(app, register_blueprint=register_blueprint)

    def init_app(
        self,
        app: Flask,
        *,
        db: SQLAlchemy | None = None,
        celery=None,
        register_blueprint: bool = True,
    ) -> None:
        """Add favsync to `app`, on the host's `db` if given (else its own database).

        With a host's Celery app (or FAVSYNC_CELERY_BROKER_URL), emails and webhooks
        are delivered by Celery workers; without, by the web process after each
        response. With register_blueprint=False the host mounts `favsync.blueprint`
        (and, for agent messages, `favsync.messages_blueprint`).
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("favsync is already initialised on this app; call init_app once")
        settings = Settings.from_app(app)
        db = db or self.db or app.extensions.get("sqlalchemy") or own_database(app, settings.sqlalchemy_database_uri)
        celery = celery or self.celery
        if celery is None and settings.celery_broker_url is not None:
            celery = worker.celery_for(
                app,
                settings.celery_broker_url,
                queue=settings.celery_queue,
                sweep_interval=settings.sweep_interval,
            )
        if celery is not None:
            worker.register_tasks(celery, app)
        app.extensions[EXTENSION_KEY] = FavSyncState(
            settings=settings,
            db=db,
            limits=RequestLimits(settings),
            mailer=Mailer.for_app(app, settings),
            celery=celery,
        )
        # Outbox rows are handed to delivery once their transaction commits. Once per
        # database, remembered here: sa.event.contains() goes by id(), which a collected
        # session can pass on to a new one, whose commits would then wake nothing.
        if db not in _LISTENING:
            sa.event.listen(db.session, "after_commit", outbox.on_commit)
            sa.event.listen(db.session, "after_soft_rollback", outbox.on_rollback)
            _LISTENING.add(db)
        if register_blueprint:
            app.register_blueprint(api, url_prefix=settings.url_prefix)
            app.register_blueprint(messages_api, url_prefix=settings.messages_url_prefix)
        app.cli.add_command(favsync_cli)

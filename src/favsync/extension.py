"""FavSync, the Flask extension: wires configuration, database, limits, mail and routes."""
from __future__ import annotations

from flask import Blueprint, Flask
from flask_sqlalchemy import SQLAlchemy

from . import auth, errors, favorites, frontend, guards, health, messages, openapi, outbox, worker
from .cli import favsync_cli
from .config import Settings
from .database import own_database, thread_reads
from .hooks import LoginHooks
from .limiting import RequestLimits
from .mail import Mailer
from .requestlog import init_request_log, mask_development_server_log
from .state import EXTENSION_KEY, FavSyncState

api = Blueprint("favsync", __name__, template_folder="templates")
api.register_blueprint(auth.bp)
api.register_blueprint(favorites.bp)
api.register_blueprint(openapi.bp)
api.register_blueprint(frontend.client)
api.register_blueprint(messages.preferences)
errors.register(api)
errors.add_catch_all(api)
guards.protect(api)
# Seed 002's login, at FAVSYNC_AUTH_URL_PREFIX: its own error shape, and no
# catch-all (the rest of that prefix may be the host's).
errors.register(auth.seed_bp, render=errors.detail_response)
guards.protect(auth.seed_bp)
# Agent messages, agents and listing events: their own prefix (FAVSYNC_MESSAGES_URL_PREFIX),
# which they may share with a host's pages: the catch-all covers only their own roots.
messages_api = messages.bp
errors.register(messages_api)
errors.add_catch_all(messages_api, roots=("/messages", "/agents", "/listings"))
guards.protect(messages_api)


class FavSync:
    """Favourites sync with magic-link login, as a Flask extension."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy | None = None,
        celery=None,
        register_blueprint: bool = True,
        operations: bool = False,
    ) -> None:
        self.db = db
        self.celery = celery
        self.hooks = LoginHooks()
        if app is not None:
            self.init_app(app, register_blueprint=register_blueprint, operations=operations)

    def init_app(
        self,
        app: Flask,
        *,
        db: SQLAlchemy | None = None,
        celery=None,
        register_blueprint: bool = True,
        operations: bool = False,
    ) -> None:
        """Add favsync to `app`, on the host's `db` if given (else its own database).

        With a host's Celery app (or FAVSYNC_CELERY_BROKER_URL), emails and webhooks
        are delivered by Celery workers; without, by the web process after each
        response. With register_blueprint=False the host mounts `favsync.blueprint`
        (and `favsync.auth_blueprint`, seed 002's login, and `favsync.messages_blueprint`,
        agent messages) itself. With operations=True the app also gets what the
        standalone service has: /healthz and /readyz, and an X-Request-ID and a log
        line for every request.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("favsync is already initialised on this app; call init_app once")
        settings = Settings.from_app(app)
        shared = db or self.db or app.extensions.get("sqlalchemy")  # a site's `db`
        db = shared or own_database(app, settings.sqlalchemy_database_uri)
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
            hooks=self.hooks,
            owns_database=shared is None,
            reads=None if shared else thread_reads(app, db),
        )
        outbox.listen(db.session)  # rows are handed to delivery once their transaction commits
        mask_development_server_log()  # a site's `flask run` logs favsync's URLs too
        if register_blueprint:
            app.register_blueprint(api, url_prefix=settings.url_prefix)
            if settings.serves_seed_login:
                app.register_blueprint(auth.seed_bp, url_prefix=settings.auth_url_prefix)
            app.register_blueprint(messages_api, url_prefix=settings.messages_url_prefix)
        if operations:
            app.register_blueprint(health.bp)
            init_request_log(app)
        app.cli.add_command(favsync_cli)

    def login_profile(self, hook):
        """Register the host's profile hook for seed 002's login answer (see favsync.hooks)."""
        self.hooks.profile = hook
        return hook

    def deal_access(self, hook):
        """Register the host's check of seed 002's `deal_id` (see favsync.hooks)."""
        self.hooks.deal_access = hook
        return hook

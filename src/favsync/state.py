"""What favsync keeps per app, and the one accessor every module uses to reach it."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from celery import Celery
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy import Engine

    from .config import Settings
    from .database import ThreadReads
    from .hooks import LoginHooks
    from .limiting import RequestLimits
    from .mail import Mailer

EXTENSION_KEY = "favsync"


@dataclass(frozen=True)
class FavSyncState:
    """favsync's per-app state, in app.extensions["favsync"]."""

    settings: Settings
    db: SQLAlchemy
    limits: RequestLimits
    mailer: Mailer
    celery: Celery | None  # None: the web process delivers, after each response
    hooks: LoginHooks  # the host's, registered on its FavSync
    # False when favsync shares a site's `db`: then its writes go through the site's
    # session, where the site's session and engine events see them.
    owns_database: bool = True
    # Each thread's read connection to favsync's own PostgreSQL database (else None).
    reads: ThreadReads | None = None

    @functools.cached_property
    def engine(self) -> Engine:
        """The app's engine, looked up once (through Flask-SQLAlchemy: the current app's,
        by the proxy): every read and write asks for it."""
        return self.db.engine

    @functools.cached_property
    def dialect(self) -> str:
        """The database's dialect (postgresql, sqlite), looked up once: reads pick their SQL by it."""
        return self.engine.dialect.name


def state() -> FavSyncState:
    """favsync's state for the current app."""
    # The app behind the proxy, as Flask's "Notes On Proxies" fetch it: an attribute
    # read through the proxy itself costs several times that, and every request
    # reaches favsync's state half a dozen times.
    return current_app._get_current_object().extensions[EXTENSION_KEY]


def settings() -> Settings:
    """favsync's settings for the current app."""
    return state().settings

"""Fixtures: a real SMTP server, a migrated database per test, the app and its clients."""
from __future__ import annotations

import email
import email.policy
import re
import shutil
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import flask_migrate
import pytest
from aiosmtpd.controller import Controller

from favsync import create_app

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = str(ROOT / "migrations")
LINK = re.compile(r"https?://\S+/verify/[A-Za-z0-9_-]+")


def free_port() -> int:
    # aiosmtpd 1.4.6 cannot bind port 0 itself: its readiness check dials the configured port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """Messages received by a real SMTP server on 127.0.0.1."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self._lock = threading.Lock()
        self.port = free_port()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 OK"

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address.strip().lower()]

    def link_for(self, address: str) -> str:
        """The sign-in link in the newest email to `address`."""
        message = self.to(address)[-1]
        return LINK.search(message.get_body(("plain",)).get_content()).group(0)


@pytest.fixture(scope="session")
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture
def inbox(smtp_server):
    smtp_server.clear()
    return smtp_server


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite file with every migration applied, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "favsync.sqlite3"
    app = create_app(base_config(f"sqlite:///{path}", port=25))
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS)
        app.extensions["favsync"].db.engine.dispose()
    return path


def base_config(database_uri: str, port: int) -> dict:
    return {
        "TESTING": True,
        "FAVSYNC_SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
        "FAVSYNC_SQLALCHEMY_DATABASE_URI": database_uri,
        "FAVSYNC_MAIL_SERVER": "127.0.0.1",
        "FAVSYNC_MAIL_PORT": port,
        "FAVSYNC_MAIL_DEFAULT_SENDER": "favsync@test.example",
        "FAVSYNC_MAIL_TIMEOUT": 5,
    }


@pytest.fixture
def database_uri(migrated_sqlite, tmp_path) -> str:
    path = tmp_path / "favsync.sqlite3"
    shutil.copy(migrated_sqlite, path)
    return f"sqlite:///{path}"


@pytest.fixture
def config(database_uri, inbox) -> dict:
    """The test app's configuration; tests may change it before `app` is built."""
    return base_config(database_uri, inbox.port)


@pytest.fixture
def app(config):
    app = create_app(config)
    yield app
    with app.app_context():
        app.extensions["favsync"].db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


API = "/api/v1/favorites"


class Auth:
    """Log in the way a visitor does: request a link, open it from the email."""

    def __init__(self, client, inbox) -> None:
        self._client = client
        self._inbox = inbox

    def request_link(self, address: str, **kwargs):
        return self._client.post(f"{API}/magic-link", json={"email": address}, **kwargs)

    def follow(self, link: str):
        return self._client.get(urlsplit(link).path)

    def login(self, address: str = "visitor@example.com", **kwargs) -> dict:
        response = self.request_link(address, **kwargs)
        assert response.status_code == 202, response.json
        response = self.follow(self._inbox.link_for(address))
        assert response.status_code == 200, response.json
        return response.json

    def headers(self, address: str = "visitor@example.com") -> dict:
        return {"Authorization": f"Bearer {self.login(address)['auth_token']}"}


@pytest.fixture
def auth(client, inbox) -> Auth:
    return Auth(client, inbox)

"""Fixtures: a real SMTP server, a migrated database per test, the app and its clients."""
from __future__ import annotations

import contextlib
import email
import email.policy
import re
import os
import socket
import threading
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller

from backends import MIGRATIONS, ROOT, open_backend  # noqa: F401  (tests import them here)
from favsync import create_app
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

    @staticmethod
    def secret_in(message) -> str:
        return LINK.search(message.get_body(("plain",)).get_content()).group(0).rsplit("/", 1)[1]

    def link_for(self, address: str) -> str:
        """The sign-in link in the newest email to `address`."""
        message = self.to(address)[-1]
        return LINK.search(message.get_body(("plain",)).get_content()).group(0)


@pytest.fixture(autouse=True)
def contract(monkeypatch):
    """Check every favsync response a test receives against the served OpenAPI document."""
    from flask.testing import FlaskClient

    from contract import check, served_by_favsync

    original_open = FlaskClient.open

    def open_and_check(self, *args, **kwargs):
        response = original_open(self, *args, **kwargs)
        if served_by_favsync(self.application, response.request):
            check(self.application, response.request.method, response.request.path, response)
        return response

    monkeypatch.setattr(FlaskClient, "open", open_and_check)


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


@pytest.fixture(scope="session")
def backend(tmp_path_factory):
    """SQLite, or PostgreSQL + Redis with FAVSYNC_TEST_BACKEND=postgres."""
    backend = open_backend(tmp_path_factory.mktemp("backend"), base_config(None, 25))
    yield backend
    backend.close()


def pytest_report_header(config):
    return f"favsync test backend: {os.environ.get('FAVSYNC_TEST_BACKEND', 'sqlite')}"


@pytest.fixture(scope="session")
def start_server(smtp_server, backend):
    """Start `gunicorn -w 4 wsgi:app` on a freshly migrated database of the backend."""
    from liveserver import LiveServer

    with contextlib.ExitStack() as stack:

        def start(**overrides) -> LiveServer:
            database_uri = stack.enter_context(backend.scratch_database())
            config = {**base_config(database_uri, smtp_server.port), **backend.ratelimit_storage()}
            # Every test request comes from 127.0.0.1; the per-IP shield is off unless asked for.
            config["FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP"] = "10000 per hour"
            config.update(overrides)
            environment = {k: str(v) for k, v in config.items() if k.startswith("FAVSYNC_")}
            server = LiveServer(environment, workers=4)  # runs `flask db upgrade` first
            stack.callback(server.stop)
            return server

        yield start


@pytest.fixture
def database_uri(backend, tmp_path) -> str:
    """A migrated database holding only the default brokerage."""
    return backend.database_uri(tmp_path)


@pytest.fixture
def config(backend, database_uri, inbox) -> dict:
    """The test app's configuration; tests may change it before `app` is built."""
    return {**base_config(database_uri, inbox.port), **backend.ratelimit_storage()}


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

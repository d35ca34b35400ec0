"""Fixtures: a real SMTP server, a migrated database per test, the app and its clients.

favsync's internals (models, errors, token helpers) are imported here and nowhere else
in the test modules, so a move inside src/ is mended in this one file.
"""
from __future__ import annotations

import contextlib
import email
import email.policy
import hashlib
import os
import re
import socket
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from backends import MIGRATIONS, ROOT, open_backend  # noqa: F401  (tests import them here)
from favsync import create_app
from favsync.config import ConfigError, load_environment  # noqa: F401  (tests import them here)
from favsync.database import Base, session as db_session  # noqa: F401
from favsync.models import (  # noqa: F401
    MAX_CODE_ATTEMPTS, Agent, ApiKey, Brokerage, Client, Favorite, ListingEvent, MagicLink,
    Message, OutboxMessage, RefreshToken,
)
from favsync.sessions import start_family
from favsync.tokens import CODE_ALPHABET, CODE_LENGTH, encode_auth_token  # noqa: F401
from hostapp import create_host_app, db as host_db

# The browser suite (tests/browser, real Chromium) runs with `make test-browser` only.
collect_ignore = [] if os.environ.get("FAVSYNC_TEST_BROWSER") else ["browser"]

API = "/api/v1/favorites"
VISITOR = "visitor@example.com"
# How long a test waits for an email that a live server delivers after answering.
MAIL_WAIT_SECONDS = 15
# The API's own verify URL, or a landing page's ?token= (the demo's, a site's).
LINK = re.compile(r"https?://\S+/verify(?:/|\?token=)([A-Za-z0-9_-]+)")
CODE = re.compile(r"type this code: ([2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4})\b")


COOKIE = "favsync_refresh"


def set_cookie(response) -> str:
    """The Set-Cookie header of the refresh cookie."""
    [header] = [v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith(COOKIE)]
    return header


def cookie_value(response) -> str:
    return SimpleCookie(set_cookie(response))[COOKIE].value


def refresh(client, prefix: str = API, **kwargs):
    """POST token/refresh as a site's front end does: JSON, with the cookie."""
    return client.post(f"{prefix}/token/refresh", json={}, **kwargs)


def log_out(client, body=None, **kwargs):
    """POST logout as a site's front end does."""
    return client.post(f"{API}/logout", json=body or {}, **kwargs)


# What a production app needs beyond the test configuration.
PRODUCTION = {"TESTING": False, "FAVSYNC_MAGIC_LINK_URL": "https://homes.example/verify?token={token}",
              "FAVSYNC_TRUSTED_HOSTS": "homes.example"}


@contextlib.contextmanager
def signalled(signal, app):
    """Record what `signal` sends for `app` within the block: a list of keyword dicts."""
    received = []

    def receiver(sender, **extra):
        received.append(extra)

    with signal.connected_to(receiver, app):
        yield received


def free_port() -> int:
    # aiosmtpd 1.4.6 cannot bind port 0 itself: its readiness check dials the configured port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bearer(token: str) -> dict:
    """The Authorization header that presents `token`."""
    return {"Authorization": f"Bearer {token}"}


def digest(secret: str) -> str:
    """An unkeyed SHA-256 of `secret`, as hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Inbox:
    """Messages received by a real SMTP server on 127.0.0.1."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self._arrived = threading.Condition()
        self.port = free_port()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def clear(self) -> None:
        with self._arrived:
            self.messages.clear()

    def received(self, address: str) -> list[email.message.EmailMessage]:
        """What has arrived for `address` so far."""
        with self._arrived:
            return [m for m in self.messages if m["To"] == address.strip().lower()]

    def to(self, address: str, count: int = 1) -> list[email.message.EmailMessage]:
        """The emails to `address`, once at least `count` arrived (a live server delivers
        after its answer, so this waits for them, up to a bound)."""
        with self._arrived:
            self._arrived.wait_for(
                lambda: len([m for m in self.messages if m["To"] == address.strip().lower()]) >= count,
                timeout=MAIL_WAIT_SECONDS,
            )
        return self.received(address)

    @staticmethod
    def text_of(message) -> str:
        return message.get_body(("plain",)).get_content()

    @classmethod
    def secret_in(cls, message) -> str:
        """The secret at the end of the sign-in link in `message`."""
        return LINK.search(cls.text_of(message)).group(1)

    def text_for(self, address: str) -> str:
        """The plain text of the newest email to `address`."""
        return self.text_of(self.to(address)[-1])

    def link_for(self, address: str, count: int = 1) -> str:
        """The sign-in link in the newest email to `address` (waiting for the `count`th)."""
        return LINK.search(self.text_of(self.to(address, count)[-1])).group(0)

    def secret_for(self, address: str) -> str:
        """The secret in the newest email to `address`."""
        return self.secret_in(self.to(address)[-1])

    def code_for(self, address: str) -> str:
        """The typed code (K7QM-3XPD) in the newest email to `address`."""
        return CODE.search(self.text_for(address)).group(1)


@pytest.fixture(autouse=True)
def contract(monkeypatch):
    """Check every favsync response a test receives against the served OpenAPI document."""
    from flask.testing import FlaskClient

    from contract import check, served_by_favsync

    original_open = FlaskClient.open

    def open_and_check(self, *args, **kwargs):
        # Buffered, as a real server does: the response is closed, and what runs
        # after it (outbox delivery) has run, before the test reads the inbox.
        kwargs.setdefault("buffered", True)
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
            config["FAVSYNC_TRUSTED_HOSTS"] = "127.0.0.1"  # production: the hosts must be named
            config.update(overrides)
            environment = {k: str(v) for k, v in config.items() if k.startswith("FAVSYNC_")}
            server = LiveServer(environment, workers=4)  # runs `flask db upgrade` first
            stack.callback(server.stop)
            return server

        yield start


@pytest.fixture
def database_uri(backend, tmp_path) -> str:
    """A migrated database holding only the default brokerage."""
    Brokerage.forget_hosts()  # PostgreSQL reuses one database, emptied between tests
    return backend.database_uri(tmp_path)


@pytest.fixture
def config(backend, database_uri, inbox) -> dict:
    """The test app's configuration; tests may change it before `app` is built."""
    return {**base_config(database_uri, inbox.port), **backend.ratelimit_storage()}


# --- apps ----------------------------------------------------------------


def settings(app):
    """The settings favsync read from `app`'s configuration."""
    return app.extensions["favsync"].settings


def engine(app) -> sa.Engine:
    """The SQLAlchemy engine favsync uses in `app`."""
    with app.app_context():
        return app.extensions["favsync"].db.engine


def dispose(app) -> None:
    """Close the connections `app` holds, so its database can go."""
    engine(app).dispose()


@contextlib.contextmanager
def disposing(build):
    """Wrap `build` so that every app it returns is disposed when the block ends."""
    built = []

    def make(*args, **kwargs):
        built.append(build(*args, **kwargs))
        return built[-1]

    try:
        yield make
    finally:
        for app in built:
            dispose(app)


@pytest.fixture
def make_app(config):
    """Build a favsync app from `config` plus overrides; each is disposed at teardown."""
    with disposing(lambda **overrides: create_app({**config, **overrides})) as make:
        yield make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def host_config(backend, inbox):
    """A brokerage site's own configuration, favsync mounted under /favs."""
    with backend.scratch_database() as database_uri:
        yield {
            "SQLALCHEMY_DATABASE_URI": database_uri,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": inbox.port,
            "MAIL_DEFAULT_SENDER": "Lakeside Homes <hello@lakeside.example>",
            "MAIL_SUPPRESS_SEND": False,
            "RATELIMIT_STORAGE_URI": "memory://",
            "FAVSYNC_SECRET_KEY": "host-secret-key-that-is-long-enough-for-hs256",
            "FAVSYNC_URL_PREFIX": "/favs",
            "FAVSYNC_MAGIC_LINK_URL": "https://lakeside.example/favs/verify/{token}",
            "TRUSTED_HOSTS": ["localhost", "lakeside.example"],  # favsync's too, by default
            **backend.ratelimit_storage(),
        }


@pytest.fixture
def make_host(host_config):
    """Build and migrate a host site from `host_config` plus overrides; each is disposed."""

    def build(*, mount=None, **overrides):
        """UPPER_CASE overrides are the site's settings; lower_case ones go to create_host_app."""
        options = {k: v for k, v in overrides.items() if k.islower()}
        settings = {k: v for k, v in overrides.items() if not k.islower()}
        app = create_host_app({**host_config, **settings}, **options)
        if mount:
            mount(app)
        result = app.test_cli_runner().invoke(args=["favsync", "db", "upgrade"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            host_db.create_all()  # the host's own tables (a real host runs its own migrations)
        return app

    with disposing(build) as make:
        yield make


# --- the database, as tests look at it -----------------------------------


@contextlib.contextmanager
def database(app):
    """The app's database session; what the block changes is committed at its end."""
    with app.app_context():
        yield db_session()
        db_session().commit()


def rows(app, statement) -> list:
    """What `statement` selects, one scalar a row."""
    with app.app_context():
        return db_session().scalars(statement).all()


def count(app, model) -> int:
    """How many rows `model`'s table holds."""
    with app.app_context():
        return db_session().scalar(sa.select(sa.func.count()).select_from(model))


@contextlib.contextmanager
def count_statements(app):
    """The SQL statements `app` sends while the block runs."""
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine(app), "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine(app), "before_cursor_execute", record)


@contextlib.contextmanager
def count_round_trips(app):
    """What `app` asks PostgreSQL while the block runs, one entry per round trip (until
    a ReadyForQuery: a statement, BEGIN and COMMIT too, or a pipeline of them, its
    statements joined by " + "), in the order they were sent.

    Read off libpq's protocol trace of every connection the app's pool hands out,
    and of this thread's own read connection (`database.ThreadReads`), which the
    pool hands out once and lets go (detaches). Each connection traces to a file of
    its own (libpq buffers each trace); their round trips are merged by time.
    """
    trips: list[str] = []
    traces = []  # (connection, its trace file)
    traced = set()  # ids of the connections traced now

    def checkout(dbapi_connection, record=None, proxy=None):
        trace = tempfile.TemporaryFile()
        traces.append((dbapi_connection, trace))
        traced.add(id(dbapi_connection))
        dbapi_connection.pgconn.trace(trace.fileno())

    def checkin(dbapi_connection, record=None):
        if dbapi_connection is not None and id(dbapi_connection) in traced:
            traced.discard(id(dbapi_connection))
            dbapi_connection.pgconn.untrace()

    reads = app.extensions["favsync"].reads
    if reads is not None and reads.usable(engine(app)):  # else the next read opens one
        checkout(reads.connection)
    pool = engine(app).pool
    sa.event.listen(pool, "checkout", checkout)
    sa.event.listen(pool, "checkin", checkin)
    try:
        yield trips
    finally:
        sa.event.remove(pool, "checkout", checkout)
        sa.event.remove(pool, "checkin", checkin)
        timed = []
        for connection, trace in traces:
            if not connection.closed:
                checkin(connection)  # a read connection (it was detached), still traced
            trace.seek(0)
            timed += _round_trips(trace.read().decode(errors="replace"))
            trace.close()
        trips += [trip for _, trip in sorted(timed)]


def _round_trips(trace: str) -> list[tuple[str, str]]:
    """(when it was sent, what it asked) of each round trip in one connection's libpq trace."""
    found, asked, sent = [], [], None
    for line in trace.splitlines():
        when, sender, _, message = (line.split("\t", 3) + ["", "", ""])[:4]
        if sender == "F" and message.startswith(("Query", "Parse")):
            # Query "BEGIN", or Parse "" "SELECT ...": the first quoted SQL
            asked.append(re.search(r'"([A-Za-z][^"]*)', message)[1][:60])
            sent = sent or when
        elif sender == "B" and message.startswith("ReadyForQuery"):
            found.append((sent or when, " + ".join(asked)))
            asked, sent = [], None
    return found


def stored_links(app) -> list[MagicLink]:
    """Every magic link in the database, oldest first."""
    return rows(app, sa.select(MagicLink).order_by(MagicLink.id))


def api_key_for(app, brokerage_id: int = 1, label: str | None = None) -> str:
    """A new API key of the brokerage, as `flask favsync api-key create` makes one."""
    from favsync import apikeys

    with app.app_context():
        return apikeys.create(brokerage_id, label)


def auth_token_for(app, address: str, brokerage_id: int = 1) -> str:
    """Sign an auth token for `address` in a new session, its client created without a login."""
    with database(app):
        client = Client.find_or_create(brokerage_id, address)
        family = start_family(client.id, datetime.now(timezone.utc)).family
        return encode_auth_token(
            settings(app), client_id=client.id, brokerage_id=brokerage_id, email=address,
            issued_at=int(time.time()), session=family,
        )


# --- brokerage servers (agent messages, seed 001) --------------------------

MESSAGES_API = "/api/v1"
MESSAGE_TOKEN = re.compile(r"token=([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def message_tokens_in(message) -> list[str]:
    """The message tokens in the links of an email, in order."""
    return MESSAGE_TOKEN.findall(Inbox.text_of(message))


class Server:
    """A brokerage's server calling the messages API with its API key."""

    def __init__(self, client, key: str, prefix: str = MESSAGES_API) -> None:
        self._client = client
        self.key = key
        self._prefix = prefix

    def call(self, method: str, path: str, *, headers=None, **kwargs):
        headers = {"X-API-Key": self.key, **(headers or {})}
        return self._client.open(f"{self._prefix}{path}", method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json=None, **kwargs):
        return self.call("POST", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.call("DELETE", path, **kwargs)

    def add_agent(self, name: str = "Jane Doe", email: str = "jane@homes.example") -> int:
        response = self.post("/agents", {"name": name, "email": email})
        assert response.status_code == 201, response.json
        return response.json["agentId"]

    def send(self, agent_id: int, *, to: str | int = VISITOR, **content):
        """POST a message from `agent_id` to a client (an id) or an email address."""
        recipient = {"clientId": to} if isinstance(to, int) else {"email": to}
        body = {"sender": "agent", "agentId": agent_id, **recipient,
                "content": {"message": "Here's a listing you might like.", **content}}
        return self.post("/messages", body)

    def lookup(self, token: str):
        return self.get("/messages", query_string={"token": token})


@pytest.fixture
def server(app, client) -> Server:
    return Server(client, api_key_for(app))


# --- logging in ----------------------------------------------------------

_ABSENT = object()


class Auth:
    """Log in the way a visitor does: request a link, open it from the email."""

    def __init__(self, client, inbox, prefix: str = API) -> None:
        self._client = client
        self._inbox = inbox
        self._prefix = prefix

    def request_link(self, address: str = VISITOR, *, next=_ABSENT, **kwargs):
        """POST magic-link for `address`; `next` goes into the body when given."""
        body = {"email": address} if next is _ABSENT else {"email": address, "next": next}
        return self._client.post(f"{self._prefix}/magic-link", json=body, **kwargs)

    def follow(self, link: str, method: str = "GET", **kwargs):
        """Open `link` from an email."""
        return self._client.open(urlsplit(link).path, method=method, **kwargs)

    def enter_code(self, code, address: str = VISITOR):
        """POST verify-code, as a visitor typing the code from the email."""
        return self._client.post(f"{self._prefix}/verify-code", json={"email": address, "code": code})

    def login(self, address: str = VISITOR, **kwargs) -> dict:
        """Request a link and follow it; the verify answer's body."""
        return self.login_response(address, **kwargs).json

    def login_response(self, address: str = VISITOR, **kwargs):
        """Request a link and follow it; the verify answer."""
        response = self.request_link(address, **kwargs)
        assert response.status_code == 202, response.json
        response = self.follow(self._inbox.link_for(address))
        assert response.status_code == 200, response.json
        return response

    def token(self, address: str = VISITOR) -> str:
        return self.login(address)["auth_token"]

    def headers(self, address: str = VISITOR) -> dict:
        return bearer(self.token(address))


@pytest.fixture
def auth(client, inbox) -> Auth:
    return Auth(client, inbox)

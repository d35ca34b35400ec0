"""The outbox in the embedded default: the request never talks to SMTP; nothing is lost or doubled."""
from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from favsync.database import session, utcnow
from favsync.models import MagicLink, OutboxMessage

from conftest import API, Auth, Inbox, free_port

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def outbox_rows(app) -> list[OutboxMessage]:
    with app.app_context():
        rows = session().scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()
        session().expunge_all()
        return rows


def make_due(app, **values) -> None:
    """Move the clock for the outbox: every row's next attempt is now (and `values` set)."""
    with app.app_context():
        session().execute(sa.update(OutboxMessage).values(next_attempt_at=utcnow(), **values))
        session().commit()


def deliver(runner) -> None:
    result = runner.invoke(args=["favsync", "deliver"])
    assert result.exit_code == 0, result.output


@pytest.fixture
def smtp_port(config) -> int:
    """A port where no mail server listens yet (the `smtp_up` fixture starts one there)."""
    config["FAVSYNC_MAIL_PORT"] = free_port()
    return config["FAVSYNC_MAIL_PORT"]


class Refusing(Inbox):
    """A mail server that refuses nobody@example.com for good (550)."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == "nobody@example.com":
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def smtp_up(smtp_port):
    """Start a mail server on `smtp_port` when the test says so."""
    started = []

    def start(handler_class=Inbox) -> Inbox:
        inbox = handler_class()
        controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        started.append(controller)
        return inbox

    yield start
    for controller in started:
        controller.stop()


def test_smtp_down_still_answers_202_and_the_link_arrives_once_smtp_is_back(
    smtp_up, client, app, runner
):
    response = client.post(f"{API}/magic-link", json={"email": "visitor@example.com"})

    assert response.status_code == 202
    [row] = outbox_rows(app)
    assert (row.status, row.attempts, row.kind) == ("queued", 1, "email")
    assert "SMTP unavailable" in row.last_error
    assert row.next_attempt_at > utcnow()  # backed off

    inbox = smtp_up()
    make_due(app)
    deliver(runner)
    deliver(runner)  # a second sweep finds nothing left to send

    [message] = inbox.to("visitor@example.com")
    [row] = outbox_rows(app)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert message["Message-ID"] == f"<{row.uid}@test.example>"
    assert client.get(urlsplit(inbox.link_for("visitor@example.com")).path).status_code == 200


def test_a_refused_address_looks_like_an_accepted_one_and_fails_at_once(smtp_up, client, app):
    smtp_up(Refusing)

    accepted = client.post(f"{API}/magic-link", json={"email": "visitor@example.com"})
    refused = client.post(f"{API}/magic-link", json={"email": "nobody@example.com"})

    assert (refused.status_code, refused.json) == (accepted.status_code, accepted.json)
    rows = {row.recipient: row for row in outbox_rows(app)}
    assert rows["visitor@example.com"].status == "sent"
    assert (rows["nobody@example.com"].status, rows["nobody@example.com"].attempts) == ("failed", 1)


def test_a_link_that_expired_on_the_way_is_never_sent(smtp_up, client, app, runner):
    client.post(f"{API}/magic-link", json={"email": "visitor@example.com"})
    inbox = smtp_up()
    with app.app_context():
        past = utcnow() - timedelta(seconds=1)
        session().execute(sa.update(MagicLink).values(expires_at=past))
        session().commit()
    make_due(app, expires_at=utcnow() - timedelta(seconds=1))

    deliver(runner)

    assert inbox.received("visitor@example.com") == []
    assert [row.status for row in outbox_rows(app)] == ["expired"]


@pytest.fixture
def three_attempts(config):
    config["FAVSYNC_DELIVERY_MAX_ATTEMPTS"] = 3


def test_retries_back_off_then_fail_and_can_be_queued_again(smtp_up, three_attempts, app, runner):
    app.test_client().post(f"{API}/magic-link", json={"email": "visitor@example.com"})
    delays = []
    for _ in range(2):
        [row] = outbox_rows(app)
        delays.append((row.next_attempt_at - utcnow()).total_seconds())
        make_due(app)
        deliver(runner)

    [row] = outbox_rows(app)
    assert (row.status, row.attempts) == ("failed", 3)
    assert 10 < delays[0] <= 30 < delays[1] <= 60  # 30 s, then 60 s, each with jitter
    shown = runner.invoke(args=["favsync", "outbox"]).output
    assert "failed   1" in shown and "queued   0" in shown

    assert "queued 1 failed" in runner.invoke(args=["favsync", "outbox", "retry", "--failed"]).output
    inbox = smtp_up()
    deliver(runner)
    assert len(inbox.to("visitor@example.com")) == 1
    assert [row.status for row in outbox_rows(app)] == ["sent"]


def test_a_row_whose_worker_died_is_taken_again_when_its_lease_runs_out(smtp_up, client, app, runner):
    client.post(f"{API}/magic-link", json={"email": "visitor@example.com"})
    inbox = smtp_up()
    # A worker claimed the row and died: the row is "sending" under a lease.
    make_due(app, status="sending", lease_until=utcnow() + timedelta(minutes=2))
    deliver(runner)
    assert inbox.received("visitor@example.com") == []

    make_due(app, lease_until=utcnow() - timedelta(seconds=1))
    deliver(runner)

    assert len(inbox.to("visitor@example.com")) == 1
    assert [row.status for row in outbox_rows(app)] == ["sent"]


def test_queued_emails_hold_no_secret_in_clear(smtp_port, client, app):
    client.post(f"{API}/magic-link", json={"email": "visitor@example.com"})

    [row] = outbox_rows(app)
    with app.app_context():
        link = session().scalar(sa.select(MagicLink))
    stored = json.dumps([row.headers, row.content])
    assert "verify/" not in stored and "sign-in" not in stored
    assert row.recipient == "visitor@example.com" and link.token not in stored


class Receiver(BaseHTTPRequestHandler):
    """A CRM's webhook endpoint that fails each event's first two deliveries."""

    failures_left: dict[str, int]
    received: list[tuple[dict, bytes]]

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        event_id = self.headers["webhook-id"]
        left = self.failures_left.setdefault(event_id, 2)
        if left:
            self.failures_left[event_id] = left - 1
            self.send_response(503)
        else:
            self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def crm(config):
    handler = type("CRM", (Receiver,), {"failures_left": {}, "received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config["FAVSYNC_WEBHOOK_URL"] = f"http://127.0.0.1:{server.server_port}/favsync-events"
    config["FAVSYNC_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    yield handler
    server.shutdown()


def test_a_failing_webhook_receiver_gets_each_event_once_after_retries(crm, auth, app, runner):
    session_id = "550e8400-e29b-41d4-a716-446655440000"
    login = auth.login("visitor@example.com", headers={"X-Session-ID": session_id})
    auth._client.post(f"{API}/sync", json={"favorites": ["C9231328"]},
                      headers={"Authorization": f"Bearer {login['auth_token']}"})
    for _ in range(2):  # the first attempt ran after each response; two more retries
        make_due(app)
        deliver(runner)

    events = {}
    for headers, body in crm.received:
        event = Webhook(WEBHOOK_SECRET).verify(body, headers)
        events[event["type"]] = (headers["webhook-id"], event["data"])
    assert len(crm.received) == 2
    assert events["client.verified"][1] == {
        "client_id": login["client_id"], "brokerage_id": 1, "email": "visitor@example.com",
        "session_id": session_id, "created": True,
    }
    assert events["favorites.changed"][1] == {
        "client_id": login["client_id"], "added": ["C9231328"], "removed": [],
    }
    assert {row.status for row in outbox_rows(app) if row.kind == "webhook"} == {"sent"}
    headers, body = crm.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(body.replace(b"visitor", b"intruder"), headers)


def test_a_new_app_delivers_even_when_sqlalchemy_says_it_already_listens(monkeypatch, make_app, inbox):
    # SQLAlchemy's event registry goes by id(): a collected app's session can leave its
    # address, and a stale "already listening", to a new app's session (seen in the suite).
    monkeypatch.setattr(sa.event, "contains", lambda *args: True)
    app = make_app()

    Auth(app.test_client(), inbox).request_link("visitor@example.com")

    assert len(inbox.received("visitor@example.com")) == 1


@pytest.fixture
def garbling_crm(config):
    """A webhook receiver that answers something that is not HTTP at all."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(b"garbage\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    config["FAVSYNC_WEBHOOK_URL"] = f"http://127.0.0.1:{listener.getsockname()[1]}/events"
    config["FAVSYNC_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    yield
    listener.close()


def test_a_row_that_fails_unexpectedly_never_stops_the_others(garbling_crm, smtp_up, client, app, runner):
    inbox = smtp_up()
    client.post(f"{API}/magic-link", json={"email": "visitor@example.com"})
    link = inbox.link_for("visitor@example.com")
    client.get(urlsplit(link).path)  # a client.verified event for the garbling receiver
    client.post(f"{API}/magic-link", json={"email": "other@example.com"})
    make_due(app)

    deliver(runner)  # the sweep goes through every row

    assert len(inbox.to("other@example.com")) == 1
    [event] = [row for row in outbox_rows(app) if row.kind == "webhook"]
    assert (event.status, event.attempts > 1) == ("queued", True)
    assert "BadStatusLine" in event.last_error


def test_a_row_whose_lease_another_worker_took_is_not_sent_twice(smtp_up, client, app):
    from favsync import outbox

    inbox = smtp_up()
    with app.app_context():
        # Two rows claimed by this worker, as one batch.
        session().add_all([OutboxMessage(uid=f"lease-{i}", kind="email", recipient=f"r{i}@example.com",
                                         headers="{}", content="x", status="queued",
                                         attempts=0, next_attempt_at=utcnow()) for i in range(2)])
        session().commit()
        first, second = outbox._claim(None)
        # Meanwhile its lease on the second ran out and another worker claimed it.
        session().execute(sa.update(OutboxMessage).where(OutboxMessage.id == second.id)
                          .values(lease_until=utcnow() + timedelta(minutes=5)))
        session().commit()

        outbox._attempt(second)

    assert inbox.received("r1@example.com") == []
    [row] = [row for row in outbox_rows(app) if row.uid == "lease-1"]
    assert row.status == "sending"  # still the other worker's

"""Delivery on the production stack: gunicorn, Celery workers on RabbitMQ, PostgreSQL, real SMTP.

No email is lost or sent twice when SMTP is down, a worker is killed mid-send,
or the broker is unreachable.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from conftest import API, Inbox, free_port
from liveserver import CeleryWorker

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        os.environ.get("FAVSYNC_TEST_BACKEND", "sqlite") != "postgres",
        reason="needs PostgreSQL, Redis and RabbitMQ: make test-postgres",
    ),
]
BROKER = os.environ.get("FAVSYNC_TEST_BROKER_URI", "amqp://guest:guest@127.0.0.1:5672//")
WAIT_SECONDS = 120


def wait_until(condition, what: str) -> None:
    """Wait for an event the system under test causes (never for time itself to pass)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.1)


class SMTPServer:
    """A real SMTP server on a fixed port that a test can stop and start again."""

    def __init__(self, handler: Inbox) -> None:
        self.handler = handler
        self.port = handler.port
        self._controller = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class Holding(Inbox):
    """Holds every delivery at RCPT until released: a worker killed meanwhile sent nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.holding.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"


class Outbox:
    """The outbox table of a live server's database, read and moved by the test."""

    def __init__(self, database_uri: str) -> None:
        self.engine = sa.create_engine(database_uri)

    def statuses(self) -> Counter:
        with self.engine.connect() as connection:
            return Counter(dict(connection.execute(
                sa.text("SELECT status, count(*) FROM favsync_outbox GROUP BY status")).all()))

    def attempted(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.text("SELECT count(*) FROM favsync_outbox WHERE attempts > 0")).scalar()

    def move_clock(self) -> None:
        """Every retry is due now, and every lease has run out."""
        with self.engine.begin() as connection:
            connection.execute(sa.text(
                "UPDATE favsync_outbox SET next_attempt_at = now() - interval '1 second', "
                "lease_until = CASE WHEN lease_until IS NULL THEN NULL "
                "ELSE now() - interval '1 second' END"))


@pytest.fixture(scope="module")
def broker():
    from kombu import Connection

    try:
        with Connection(BROKER, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        raise RuntimeError(
            f"RabbitMQ is not reachable at {BROKER} (start it: rabbitmq-server -detached): {exc}"
        ) from None
    return BROKER


@pytest.fixture
def stack(start_server, broker):
    """gunicorn (4 workers) + N Celery workers on a queue of their own, and the outbox table."""
    queue = f"favsync-test-{uuid.uuid4().hex[:8]}"
    workers: list[CeleryWorker] = []

    def start(*, smtp_port: int, celery_workers: int, broker_url: str = broker):
        server = start_server(
            FAVSYNC_MAIL_PORT=smtp_port,
            FAVSYNC_CELERY_BROKER_URL=broker_url,
            FAVSYNC_CELERY_QUEUE=queue,
            FAVSYNC_RATELIMIT_EMAILS_GLOBAL="100000 per hour",
        )
        for index in range(celery_workers):
            workers.append(CeleryWorker(server.environment, f"w{index}-{queue}"))
        return server, workers, Outbox(server.environment["FAVSYNC_SQLALCHEMY_DATABASE_URI"])

    yield start
    for worker in workers:
        worker.stop()
    from kombu import Connection

    with Connection(broker) as connection:
        connection.default_channel.queue_delete(queue)


def request_links(server, addresses: list[str]) -> Counter:
    replies = server.race(len(addresses), "POST", f"{API}/magic-link",
                          [{"email": address} for address in addresses])
    return Counter(reply.status for reply in replies)


def delivered_once(inbox: Inbox, addresses: list[str]) -> None:
    """Every address got exactly one email, and no Message-ID came twice."""
    wait_until(lambda: len(inbox.messages) >= len(addresses), f"{len(addresses)} emails")
    assert sorted(message["To"] for message in inbox.messages) == sorted(addresses)
    ids = Counter(message["Message-ID"] for message in inbox.messages)
    assert len(ids) == len(addresses) and set(ids.values()) == {1}


def test_smtp_down_loses_nothing_and_sends_each_link_once_it_is_back(stack):
    smtp = SMTPServer(Inbox())  # not started: SMTP is down
    server, _, outbox = stack(smtp_port=smtp.port, celery_workers=1)
    addresses = [f"down{i}@example.com" for i in range(50)]

    assert request_links(server, addresses) == {202: 50}
    wait_until(lambda: outbox.attempted() == 50 and outbox.statuses() == {"queued": 50},
               "a first, failed attempt at each email")

    smtp.start()
    try:
        outbox.move_clock()
        server.command("favsync", "deliver")
        delivered_once(smtp.handler, addresses)
        server.command("favsync", "deliver")  # nothing is left to send twice
        assert outbox.statuses() == {"sent": 50}
        assert len(smtp.handler.messages) == 50
    finally:
        smtp.stop()


def test_a_worker_killed_mid_send_loses_nothing(stack):
    smtp = SMTPServer(Holding())
    smtp.start()
    try:
        server, workers, outbox = stack(smtp_port=smtp.port, celery_workers=1)
        addresses = [f"killed{i}@example.com" for i in range(5)]
        assert request_links(server, addresses) == {202: 5}
        wait_until(smtp.handler.holding.is_set, "the worker to start sending")
        assert outbox.statuses()["sending"] == 1

        workers[0].kill()  # mid-send: the row keeps its lease, its message is unacknowledged
        outbox.move_clock()  # the dead worker's lease runs out
        smtp.handler.release.set()
        workers.append(CeleryWorker(server.environment, "replacement"))
        server.command("favsync", "deliver")

        delivered_once(smtp.handler, addresses)
        wait_until(lambda: outbox.statuses() == {"sent": 5}, "every row marked sent")
    finally:
        smtp.stop()


def test_an_unreachable_broker_costs_a_delay_never_an_email(stack, inbox):
    closed = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    server, _, outbox = stack(smtp_port=inbox.port, celery_workers=0, broker_url=closed)
    addresses = [f"nobroker{i}@example.com" for i in range(10)]

    assert request_links(server, addresses) == {202: 10}
    assert outbox.statuses() == {"queued": 10}
    assert inbox.messages == []

    server.command("favsync", "deliver")  # the sweeper (cron or Celery beat)

    delivered_once(inbox, addresses)
    assert outbox.statuses() == {"sent": 10}


def test_four_web_workers_and_three_celery_workers_deliver_500_emails_exactly_once(stack, inbox):
    server, _, outbox = stack(smtp_port=inbox.port, celery_workers=3)
    addresses = [f"crowd{i}@example.com" for i in range(500)]

    replies = Counter()
    for start in range(0, 500, 50):
        replies += request_links(server, addresses[start:start + 50])

    assert replies == {202: 500}
    delivered_once(inbox, addresses)
    wait_until(lambda: outbox.statuses() == {"sent": 500}, "every row marked sent")
    assert "queued" in server.command("favsync", "outbox")

"""Celery: the tasks that deliver the outbox, on favsync's own Celery app or a host's.

The outbox row is the source of truth; a Celery message is only a wake-up. A
lost message (the broker was down, a worker died) costs a delay, never an email:
the sweep task (or `flask favsync deliver`) takes every due row.
"""
from __future__ import annotations

import logging

from celery import Celery
from flask import Flask

log = logging.getLogger("favsync.worker")

DELIVER_TASK = "favsync.deliver"
SWEEP_TASK = "favsync.sweep"


def celery_for(app: Flask, broker_url: str, *, queue: str, sweep_interval: int) -> Celery:
    """favsync's own Celery app, for a standalone deployment (`celery -A wsgi:celery worker`)."""
    celery = Celery(app.import_name, broker=broker_url)
    celery.conf.update(
        task_default_queue=queue,
        # A worker killed mid-send gets its message redelivered; the row's lease,
        # not Celery, keeps two workers from sending one row.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        # A request must never hang on a dead broker: fail fast and let the sweep deliver.
        broker_connection_timeout=2,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"max_retries": 1, "interval_start": 0,
                                  "interval_step": 0.5, "interval_max": 0.5},
        task_publish_retry=False,
        beat_schedule={
            "favsync-sweep": {"task": SWEEP_TASK, "schedule": float(sweep_interval)},
        },
    )
    return celery


def register_tasks(celery: Celery, app: Flask) -> None:
    """Register favsync's tasks on `celery` (favsync's own, or a host's), bound to `app`."""
    from . import outbox

    @celery.task(name=DELIVER_TASK, acks_late=True, ignore_result=True)
    def deliver(outbox_ids: list[int]) -> int:
        with app.app_context():
            return outbox.deliver(outbox_ids)

    @celery.task(name=SWEEP_TASK, ignore_result=True)
    def sweep() -> int:
        with app.app_context():
            return outbox.deliver()


def enqueue(celery: Celery, ids: list[int]) -> None:
    """Publish a wake-up for committed outbox rows; never raise, never hang for long."""
    try:
        celery.send_task(DELIVER_TASK, args=[ids], retry=False)
    except Exception as exc:  # kombu's connection errors, and whatever the broker says
        log.warning("could not reach the Celery broker (%s); the sweep will deliver "
                    "outbox rows %s", exc.__class__.__name__, ids)


def enqueue_sweeps(celery: Celery, count: int) -> None:
    """Publish `count` sweep wake-ups, so that several workers share a bulk write's rows."""
    try:
        for _ in range(count):
            celery.send_task(SWEEP_TASK, retry=False)
    except Exception as exc:
        log.warning("could not reach the Celery broker (%s); the sweep will deliver the rows",
                    exc.__class__.__name__)


def broker_reachable(celery: Celery) -> bool:
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False

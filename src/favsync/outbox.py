"""The outbox: emails and webhooks are written in the transaction that causes them,
then claimed under a lease, delivered, and retried with backoff until they go.

Delivery is at least once: a worker that dies after SMTP took a message but
before the row says so lets the row's lease run out, and it is sent again
(with the same Message-ID, so the duplicate is recognisable).
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import random
import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Callable, Iterable, Sequence

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, g, has_request_context

from .database import dialect_name, session, utcnow
from .mail import DeliveryError, Email
from .models import OutboxMessage
from .state import state
from . import webhooks

log = logging.getLogger("favsync.outbox")

EMAIL = "email"
WEBHOOK = "webhook"
STATUSES = ("queued", "sending", "sent", "failed", "expired")
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)
SWEEP_BATCH = 100
_NEW_IDS = "favsync.outbox.new"  # session.info key: rows this transaction wrote
_NEW_BULK = "favsync.outbox.bulk"  # session.info key: how many it wrote in bulk (ids unknown)
MAX_SWEEPS = 8  # Celery wake-ups for one bulk write: workers share its rows


# -- writing: in the caller's transaction ------------------------------------------

def add_email(email: Email, *, expires_at: datetime | None = None) -> int:
    """Queue `email`; it goes once the caller's transaction commits (never if it rolls back)."""
    return _add(EMAIL, email.to, {}, _email_content(email), expires_at)


def sends_webhooks() -> bool:
    """Whether `add_event` queues anything: FAVSYNC_WEBHOOK_URL is set."""
    return state().settings.webhook_url is not None


def add_event(event_type: str, data: dict) -> int | None:
    """Queue a webhook event for the CRM, if FAVSYNC_WEBHOOK_URL is set."""
    if not sends_webhooks():
        return None
    return _add(WEBHOOK, state().settings.webhook_url, {"type": event_type},
                webhooks.payload(event_type, data), None)


def add_emails(emails: Sequence[Email], *, not_before: datetime | None = None) -> list[str]:
    """Queue many emails with one statement, however many; return their uids (Message-IDs).

    They go once the caller's transaction commits, and not before `not_before`.
    """
    now = utcnow()
    cipher = _cipher()
    rows = [
        _row(EMAIL, email.to, {}, _email_content(email), None, now, not_before or now, cipher)
        for email in emails
    ]
    if rows:
        # executemany without RETURNING: one statement for any number of rows.
        session().execute(sa.insert(OutboxMessage), rows)
        session().info[_NEW_BULK] = session().info.get(_NEW_BULK, 0) + len(rows)
    return [row["uid"] for row in rows]


def _email_content(email: Email) -> dict:
    return {"subject": email.subject, "text": email.text, "html": email.html,
            "headers": email.headers}


def _row(kind: str, recipient: str, headers: dict, content: dict, expires_at: datetime | None,
         now: datetime, due_at: datetime, cipher: Fernet) -> dict:
    return {
        "uid": str(uuid.uuid4()),
        "kind": kind,
        "recipient": recipient,
        "headers": json.dumps(headers),
        "content": cipher.encrypt(json.dumps(content).encode()).decode(),
        "status": "queued",
        "attempts": 0,
        "next_attempt_at": due_at,
        "created_at": now,
        "expires_at": expires_at,
    }


def _add(kind: str, recipient: str, headers: dict, content: dict,
         expires_at: datetime | None) -> int:
    now = utcnow()
    row = _row(kind, recipient, headers, content, expires_at, now, now, _cipher())
    row_id = session().scalar(sa.insert(OutboxMessage).values(**row).returning(OutboxMessage.id))
    session().info.setdefault(_NEW_IDS, []).append(row_id)
    return row_id


def _cipher() -> Fernet:
    # Queued emails hold live sign-in links: at rest they are encrypted with a
    # key derived from the secret key, like every other secret favsync stores.
    key = hashlib.sha256(b"favsync-outbox:" + state().settings.secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


# -- waking delivery once the rows are committed -----------------------------------

_LISTENING = "_favsync_outbox_listening"


def listen(db_session) -> None:
    """Wake delivery after every commit of `db_session` (a scoped session), once per session class.

    Marked on the class itself: SQLAlchemy's event.contains() keys on id(), and a
    new session class that reuses a dead one's id() would look registered and
    never deliver.
    """
    session_class = db_session.session_factory.class_
    if not vars(session_class).get(_LISTENING):
        sa.event.listen(db_session, "after_commit", on_commit)
        sa.event.listen(db_session, "after_soft_rollback", on_rollback)
        setattr(session_class, _LISTENING, True)


def on_commit(db_session) -> None:
    """After a commit that wrote outbox rows, wake their delivery (never before)."""
    ids = db_session.info.pop(_NEW_IDS, None)
    if ids:
        wake(ids)
    bulk = db_session.info.pop(_NEW_BULK, 0)
    if bulk:
        wake_sweep(bulk)


def on_rollback(db_session, *_) -> None:
    db_session.info.pop(_NEW_IDS, None)
    db_session.info.pop(_NEW_BULK, None)


def wake(ids: list[int]) -> None:
    """Hand committed rows to Celery, or deliver them in this process after the response."""
    celery = state().celery
    if celery is not None:
        from .worker import enqueue

        enqueue(celery, ids)  # if the broker is down, the sweeper delivers them
    elif has_request_context():
        _deliver_after_response(ids)
    # Else (a command, a task): the session is mid-commit and cannot run SQL
    # here; `flask favsync deliver` takes the rows on its next round.


def wake_sweep(count: int) -> None:
    """Wake delivery of `count` rows written in bulk (their ids unknown): sweeps take them."""
    celery = state().celery
    if celery is not None:
        from .worker import enqueue_sweeps

        enqueue_sweeps(celery, min(MAX_SWEEPS, math.ceil(count / SWEEP_BATCH)))
    elif has_request_context():
        _deliver_after_response(None)


def _deliver_after_response(ids: list[int] | None) -> None:
    """Deliver `ids` (None: every due row) once the response has been sent."""
    pending = g.get("favsync_outbox_pending")
    if pending is None:
        from flask import after_this_request

        pending = g.favsync_outbox_pending = {"ids": [], "sweep": False}
        app = current_app._get_current_object()

        @after_this_request
        def schedule(response):
            # After the response is sent: the visitor never waits for SMTP.
            def run() -> None:
                with app.app_context():
                    if pending["ids"]:
                        deliver(pending["ids"])
                    if pending["sweep"]:
                        deliver()

            response.call_on_close(run)
            return response

    if ids is None:
        pending["sweep"] = True
    else:
        pending["ids"].extend(ids)


# -- delivering ---------------------------------------------------------------------

def deliver(ids: Iterable[int] | None = None) -> int:
    """Claim and deliver the given rows (or every due row, in batches); return how many were tried."""
    tried = 0
    ids = list(ids) if ids is not None else None
    while True:
        claimed = _claim(ids)
        for row in claimed:
            _attempt(row)
        tried += len(claimed)
        if ids is not None or len(claimed) < SWEEP_BATCH:
            return tried


def _claim(ids: list[int] | None) -> list[sa.Row]:
    """Take due rows under a lease, so no other worker on any machine sends them meanwhile."""
    db = session()
    now = utcnow()
    lease_until = now + timedelta(seconds=state().settings.delivery_lease)
    candidates = sa.select(OutboxMessage.id).where(OutboxMessage.due(now))
    if ids is not None:
        candidates = candidates.where(OutboxMessage.id.in_(ids))
    candidates = candidates.order_by(OutboxMessage.id).limit(SWEEP_BATCH)
    if dialect_name() == "postgresql":
        # Workers skip each other's rows instead of queueing behind them.
        candidates = candidates.with_for_update(skip_locked=True)
    rows = db.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id.in_(candidates.scalar_subquery()), OutboxMessage.due(now))
        .values(status="sending", lease_until=lease_until, attempts=OutboxMessage.attempts + 1)
        .returning(
            OutboxMessage.id,
            OutboxMessage.uid,
            OutboxMessage.kind,
            OutboxMessage.recipient,
            OutboxMessage.content,
            OutboxMessage.attempts,
            OutboxMessage.expires_at,
            OutboxMessage.lease_until,
        )
        .execution_options(synchronize_session=False)
    ).all()
    db.commit()
    return rows


def _renew(row: sa.Row) -> SimpleNamespace | None:
    """Extend this row's lease just before sending it, or None if the lease was lost.

    A batch is claimed at once but sent one by one: without this, the end of a slow
    batch would outlive its lease and be claimed, and sent, by another worker too.
    """
    lease_until = utcnow() + timedelta(seconds=state().settings.delivery_lease)
    renewed = _while_leased(row, lease_until=lease_until)
    session().commit()
    if not renewed:
        return None
    return SimpleNamespace(**{**row._mapping, "lease_until": lease_until})


def _attempt(claimed: sa.Row) -> None:
    row = _renew(claimed)
    if row is None:
        return  # another worker holds it now
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        # A sign-in link that expired on the way is useless; never send it late.
        _finish(row, "expired")
        return
    try:
        content = json.loads(_cipher().decrypt(row.content.encode()))
        if row.kind == EMAIL:
            email = Email(to=row.recipient, subject=content["subject"], text=content["text"],
                          html=content["html"], headers=content["headers"])
            state().mailer.send(email, row.uid)
        else:
            webhooks.post(row.recipient, row.uid, content, timeout=state().settings.mail_timeout)
    except InvalidToken:
        _finish(row, "failed", "cannot decrypt: the secret key changed since it was queued")
    except DeliveryError as exc:
        _retry_or_fail(row, exc, now)
    except Exception as exc:  # noqa: BLE001 - one bad row must never stop the others
        log.exception("outbox %s %s could not be sent", row.kind, row.id)
        _retry_or_fail(row, DeliveryError(f"{exc.__class__.__name__} while sending"), now)
    else:
        _finish(row, "sent")


def _retry_or_fail(row, exc: DeliveryError, now: datetime) -> None:
    if exc.permanent or row.attempts >= state().settings.delivery_max_attempts:
        log.error("outbox %s %s failed for good: %s", row.kind, row.id, exc)
        _finish(row, "failed", str(exc))
    else:
        log.warning("outbox %s %s not delivered (attempt %s): %s",
                    row.kind, row.id, row.attempts, exc)
        _finish(row, "queued", str(exc), retry_at=now + backoff(row.attempts))


def backoff(attempts: int) -> timedelta:
    """Exponential, capped, with jitter so that a recovering server is not hit all at once."""
    delay = min(LAST_RETRY, FIRST_RETRY * 2 ** (attempts - 1))
    return delay / 2 + delay / 2 * random.random()


def _finish(row: sa.Row, status: str, error: str | None = None,
            retry_at: datetime | None = None) -> None:
    db = session()
    now = utcnow()
    values = {"status": status, "lease_until": None, "last_error": error}
    if status == "sent":
        values["sent_at"] = now
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    finished = _while_leased(row, **values)
    if finished == 1 and row.kind == EMAIL and status in ("sent", "failed"):
        for hook in _delivered_hooks:
            hook(row.uid, status, now)
    db.commit()


def _while_leased(row, **values) -> int:
    """Update `row` only while this worker's lease on it holds (a worker that outlived
    its lease lost the row); return how many rows changed, 0 or 1. The caller commits."""
    return session().execute(
        sa.update(OutboxMessage)
        .where(
            OutboxMessage.id == row.id,
            OutboxMessage.status == "sending",
            OutboxMessage.lease_until == row.lease_until,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount


# Called as hook(uid, "sent" or "failed", when) in the transaction that records an
# email's fate, so that what it was sent for keeps it after the row is purged.
_delivered_hooks: list[Callable[[str, str, datetime], None]] = []


def when_delivered(hook: Callable[[str, str, datetime], None]) -> None:
    """Call `hook(uid, status, when)` each time an email is sent, or fails for good."""
    _delivered_hooks.append(hook)


def cancel(uid: str) -> bool:
    """Delete a queued email no worker has taken yet; False if it is being or was sent."""
    return session().execute(
        sa.delete(OutboxMessage)
        .where(OutboxMessage.uid == uid, OutboxMessage.status == "queued")
        .returning(OutboxMessage.id)
    ).first() is not None


# -- operations ---------------------------------------------------------------------

def counts() -> dict[str, int]:
    """How many rows are in each status."""
    rows = session().execute(
        sa.select(OutboxMessage.status, sa.func.count()).group_by(OutboxMessage.status)
    ).all()
    return {status: 0 for status in STATUSES} | dict(rows)


def oldest_queued_age() -> float | None:
    """Seconds since the oldest undelivered row was written, or None when nothing waits."""
    oldest = session().scalar(
        sa.select(sa.func.min(OutboxMessage.created_at)).where(
            OutboxMessage.status.in_(("queued", "sending"))
        )
    )
    if oldest is None:
        return None
    return max(0.0, (utcnow() - oldest).total_seconds())


def retry_failed() -> int:
    """Queue every failed row again, from attempt one; return how many."""
    db = session()
    result = db.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.status == "failed")
        .values(status="queued", attempts=0, next_attempt_at=utcnow(), last_error=None)
        .execution_options(synchronize_session=False)
    )
    db.commit()
    return result.rowcount


def purge(ended_before: datetime) -> int:
    """Delete messages delivered, failed or expired before `ended_before` (caller commits)."""
    result = session().execute(
        sa.delete(OutboxMessage)
        .where(
            OutboxMessage.status.in_(("sent", "failed", "expired")),
            sa.func.coalesce(OutboxMessage.sent_at, OutboxMessage.created_at) < ended_before,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount

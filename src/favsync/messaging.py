"""Agent messages (seed 001): write them with their emails, find them, cancel them, and
sign a client in with a message's token.

A message's token is a UUIDv4 stored only as its SHA-256; every link of the email
carries it as ?token=. It signs its client in, any number of times, for
FAVSYNC_MESSAGE_TOKEN_TTL after the email was sent, on its brokerage's host only,
and not once the client has logged out everywhere since.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

from . import agents, outbox, sessions
from .database import UTCDateTime, session, utcnow
from .errors import already_sent, invalid_token, not_found, token_expired
from .mail import render_message
from .models import Brokerage, Client, Message
from .schemas import MessagesQuery, SendMessageRequest
from .state import settings, state
from .tokens import message_token_digest, new_message_token


@dataclass(frozen=True)
class Recipient:
    """A client a message goes to, and the agent it comes from."""

    client_id: int
    email: str
    agent_id: int
    agent_name: str
    agent_email: str


# -- writing ----------------------------------------------------------------------

def send(brokerage_id: int, request: SendMessageRequest) -> dict:
    """Send one agent's message to one client of the brokerage; return it in seed 001's shape."""
    agent = agents.of_brokerage(brokerage_id, request.agentId)
    client_id, email = _client(brokerage_id, request)
    # The first agent to write to a client becomes theirs; later ones never replace them.
    session().execute(
        sa.update(Client)
        .where(Client.id == client_id, Client.agent_id.is_(None))
        .values(agent_id=agent.id)
        .execution_options(synchronize_session=False)
    )
    [token] = queue(
        brokerage_id, agent.brokerage,
        [Recipient(client_id, email, agent.id, agent.name, agent.email)],
        request.content.model_dump(),
        source=request.source,
        schedule_at=request.delivery.scheduleDateTime,
    )
    session().commit()
    [message] = _found(Message.token == message_token_digest(token))
    return {**message, "token": token}


def _client(brokerage_id: int, request: SendMessageRequest) -> tuple[int, str]:
    """(id, email) of the client the request names: by id, or by email (created if new)."""
    if request.email is not None:
        return Client.find_or_create(brokerage_id, request.email).id, request.email
    client = session().execute(
        sa.select(Client.id, Client.email).where(
            Client.id == request.clientId, Client.brokerage_id == brokerage_id
        )
    ).first()
    if client is None:
        raise not_found(f"This brokerage has no client {request.clientId}.")
    return client.id, client.email


def queue(
    brokerage_id: int, brokerage: str, recipients: Sequence[Recipient], content: dict, *,
    source: str, schedule_at: datetime | None = None,
    unsubscribe_url: Callable[[int], str] | None = None,
) -> list[str]:
    """Write one message and its email per recipient, each with its own token, in the
    caller's transaction and in two statements however many there are; return the tokens.

    With `unsubscribe_url` (alerts) each email carries its client's one-click unsubscribe.
    """
    now = utcnow()
    tokens, emails, rows = [], [], []
    for recipient in recipients:
        token, digest = new_message_token()
        emails.append(render_message(
            to=recipient.email,
            subject=content["subject"] or f"A message from {recipient.agent_name}",
            message=content["message"],
            links=[with_token(link, token) for link in content["links"]],
            listings=[(listing_id, _listing_link(listing_id, token))
                      for listing_id in content["listings"]],
            pictures=content["pictures"],
            agent=(recipient.agent_name, recipient.agent_email),
            brokerage=brokerage,
            unsubscribe_url=unsubscribe_url(recipient.client_id) if unsubscribe_url else None,
        ))
        rows.append({
            "brokerage_id": brokerage_id, "agent_id": recipient.agent_id,
            "client_id": recipient.client_id, "sender": "agent", "source": source,
            "token": digest, "content": content, "schedule_at": schedule_at, "created_at": now,
        })
        tokens.append(token)
    for row, uid in zip(rows, outbox.add_emails(emails, not_before=schedule_at)):
        row["outbox_uid"] = uid
    if rows:
        session().execute(sa.insert(Message), rows)  # executemany: one statement
    return tokens


def with_token(url: str, token: str) -> str:
    """`url` with token=<token> added to its query (any other token= replaced; the rest kept)."""
    parts = urlsplit(url)
    kept = [pair for pair in parts.query.split("&") if pair and pair.split("=", 1)[0] != "token"]
    return urlunsplit(parts._replace(query="&".join([*kept, f"token={token}"])))


def _listing_link(listing_id: str, token: str) -> str | None:
    template = settings().listing_url
    return None if template is None else with_token(template.replace("{listing_id}", listing_id), token)


def cancel(brokerage_id: int, message_id: int) -> None:
    """Cancel a message whose email has not gone yet (403 once it is being sent or was)."""
    db = session()
    outbox_uid = db.execute(
        sa.delete(Message)
        .where(Message.id == message_id, Message.brokerage_id == brokerage_id)
        .returning(Message.outbox_uid)
    ).first()
    if outbox_uid is None:
        db.rollback()
        raise not_found(f"This brokerage has no message {message_id}.")
    if outbox_uid[0] is None or not outbox.cancel(outbox_uid[0]):
        db.rollback()
        raise already_sent()
    db.commit()


def _record_delivery(outbox_uid: str, status: str, at: datetime) -> None:
    """Keep on the message what became of its email (the outbox row is purged later)."""
    session().execute(
        sa.update(Message)
        .where(Message.outbox_uid == outbox_uid)
        .values(delivered=status, sent_at=at if status == "sent" else None)
        .execution_options(synchronize_session=False)
    )


outbox.when_delivered(_record_delivery)


# -- reading ----------------------------------------------------------------------

def find(query: MessagesQuery, *, brokerage_id: int | None = None,
         client_id: int | None = None) -> dict:
    """One page of the brokerage's (or the client's) messages that match `query`, newest first.

    A token lookup by the brokerage echoes the token; nothing else can show one (only
    its digest is stored).
    """
    now = utcnow()
    where = [Message.brokerage_id == brokerage_id] if brokerage_id is not None else [
        Message.client_id == client_id
    ]
    filters = (
        (query.token, lambda token: Message.token == message_token_digest(token)),
        (query.agentId, lambda agent_id: Message.agent_id == agent_id),
        (query.clientId, lambda client: Message.client_id == client),
        (query.messageId, lambda message_id: Message.id == message_id),
        (query.sender, lambda sender: Message.sender == sender),
        (query.status, lambda status: Message.status(now) == status),
        (query.startTime, lambda start: Message.created_at >= start),
        (query.endTime, lambda end: Message.created_at <= end),
    )
    where += [condition(value) for value, condition in filters if value is not None]
    count = session().scalar(sa.select(sa.func.count(Message.id)).where(*where))
    size = query.resultsPerPage
    messages = _found(*where, limit=size, offset=(query.pageNum - 1) * size, now=now)
    if query.token is not None and brokerage_id is not None:
        messages = [{**message, "token": query.token} for message in messages]
    return {"page": query.pageNum, "numPages": math.ceil(count / size), "pageSize": size,
            "count": count, "messages": messages}


def get(brokerage_id: int, message_id: int) -> dict:
    """The brokerage's message `message_id` in seed 001's shape, or 404."""
    found = _found(Message.id == message_id, Message.brokerage_id == brokerage_id)
    if not found:
        raise not_found(f"This brokerage has no message {message_id}.")
    return found[0]


def _found(*where, limit: int | None = None, offset: int = 0,
           now: datetime | None = None) -> list[dict]:
    """The messages matching `where`, newest first, in seed 001's shape (without tokens)."""
    rows = session().execute(
        sa.select(
            Message.id, Message.agent_id, Message.sender, Message.source, Message.client_id,
            Message.content, Message.schedule_at, Message.sent_at,
            Message.status(now or utcnow()).label("status"),
        )
        .where(*where)
        .order_by(Message.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        {
            "messageId": row.id,
            "agentId": row.agent_id,
            "sender": row.sender,
            "source": row.source,
            "clientId": row.client_id,
            "content": row.content,
            "delivery": {
                "scheduleDateTime": _time(row.schedule_at),
                "sentDateTime": _time(row.sent_at),
                "status": row.status,
            },
        }
        for row in rows
    ]


def _time(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and Z, as seed 001 shows times."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- signing in -------------------------------------------------------------------

def redeem_message_token(
    token: str, *, host: str, ip: str, session_id: str | None = None
) -> sessions.Login:
    """Sign in the client a message token was sent to, and record the click.

    Refused (and counted against `ip`) when message-token login is off, the token is
    unknown, of another brokerage than `host`'s, not sent yet, older than
    FAVSYNC_MESSAGE_TOKEN_TTL, or sent before the client last logged out everywhere.
    """
    limits = state().limits
    limits.check_message_token_failures(ip)
    db = session()
    now = utcnow()
    message = db.execute(
        sa.select(Message.id, Message.brokerage_id, Message.client_id, Message.sent_at,
                  Client.email, Client.tokens_valid_after)
        .join(Client, Client.id == Message.client_id)
        .where(Message.token == message_token_digest(token))
    ).first()
    refusal = _refusal(message, host, now)
    if refusal is not None:
        db.rollback()
        limits.hit_message_token_failure(ip)
        raise refusal
    db.execute(
        sa.update(Message)
        .where(Message.id == message.id)
        .values(
            clicks=Message.clicks + 1,
            first_clicked_at=sa.func.coalesce(Message.first_clicked_at, sa.literal(now, UTCDateTime())),
            last_clicked_at=now,
            session_id=sa.func.coalesce(session_id, Message.session_id),
        )
        .execution_options(synchronize_session=False)
    )
    return sessions.sign_in(
        message.client_id, brokerage_id=message.brokerage_id, email=message.email,
        not_before=message.tokens_valid_after, now=now, session_id=session_id,
    )


def _refusal(message: sa.Row | None, host: str, now: datetime):
    """Why `message`'s token may not sign in on `host` now, or None."""
    ttl = settings().message_token_ttl
    if (
        ttl == 0
        or message is None
        or message.sent_at is None
        or message.brokerage_id != Brokerage.for_host(host).id
    ):
        return invalid_token()
    if (
        message.sent_at + timedelta(seconds=ttl) <= now
        or message.sent_at.timestamp() < message.tokens_valid_after
    ):
        return token_expired()
    return None

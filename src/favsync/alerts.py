"""Listing alerts: a listing's price or status change, fanned out to the clients who
favourited it; and the switch (one-click unsubscribe, preferences) that stops them."""
from __future__ import annotations

from typing import Callable

import sqlalchemy as sa
from flask import url_for
from itsdangerous import BadSignature, URLSafeSerializer

from . import messaging
from .database import serialize, session, utcnow
from .errors import invalid_unsubscribe_link, no_default_agent
from .mail import render_alert
from .models import Agent, Brokerage, Client, Favorite, ListingEvent
from .schemas import ListingEventRequest
from .state import settings

SOLD = {"s", "sld", "sold"}
ACTIVE = "a"


def queue_alerts(brokerage_id: int, listing_id: str, event: ListingEventRequest) -> tuple[dict, bool]:
    """Alert every client of the brokerage who favourited the listing and wants alerts.

    Returns the answer, and whether this call wrote it: an event id seen before gets
    its first answer again and writes nothing. The statement count does not depend on
    the number of clients.
    """
    db = session()
    # A retry racing the first delivery of the event waits for it, then sees it.
    serialize(f"listing-event:{brokerage_id}:{event.eventId}")
    seen = db.scalar(sa.select(ListingEvent.queued).where(
        ListingEvent.brokerage_id == brokerage_id, ListingEvent.event_id == event.eventId
    ))
    if seen is not None:
        db.rollback()
        return _answer(event.eventId, seen), False
    recipients = _favouriters(brokerage_id, listing_id)
    if recipients:
        brokerage = db.scalar(sa.select(Brokerage.name).where(Brokerage.id == brokerage_id))
        subject, text = render_alert(event.type, **_alert_context(listing_id, event, brokerage))
        content = {"message": text, "subject": subject[:100],
                   "links": [event.url] if event.url else [], "listings": [listing_id],
                   "searches": [], "pictures": []}
        messaging.queue(brokerage_id, brokerage, recipients, content, source="bot",
                        unsubscribe_url=unsubscribe_links())
    db.execute(sa.insert(ListingEvent).values(
        brokerage_id=brokerage_id, event_id=event.eventId, listing_id=listing_id,
        type=event.type, queued=len(recipients), created_at=utcnow(),
    ))
    db.commit()
    return _answer(event.eventId, len(recipients)), True


def _answer(event_id: str, queued: int) -> dict:
    return {"eventId": event_id, "queued": queued}


def _favouriters(brokerage_id: int, listing_id: str) -> list[messaging.Recipient]:
    """The brokerage's clients with alerts on who favourited the listing, each with the
    agent their alert comes from: their own, else the brokerage's default agent."""
    default_agent = (
        sa.select(Agent.id)
        .where(Agent.brokerage_id == brokerage_id, Agent.is_default)
        .scalar_subquery()
    )
    rows = session().execute(
        sa.select(Client.id, Client.email, Agent.id.label("agent_id"),
                  Agent.name.label("agent_name"), Agent.email.label("agent_email"))
        .join(Favorite, Favorite.client_id == Client.id)
        .outerjoin(Agent, Agent.id == sa.func.coalesce(Client.agent_id, default_agent))
        .where(Favorite.listing_id == listing_id, Client.brokerage_id == brokerage_id, Client.alerts)
        .order_by(Client.id)
    ).all()
    if any(row.agent_id is None for row in rows):
        session().rollback()
        raise no_default_agent()
    return [messaging.Recipient(*row) for row in rows]


def _alert_context(listing_id: str, event: ListingEventRequest, brokerage: str) -> dict:
    previous, current = event.previous, event.current
    return {
        "listing_id": listing_id,
        "url": event.url,
        "brokerage": brokerage,
        "previous_price": _dollars(previous.listPrice),
        "current_price": _dollars(current.listPrice),
        "reduced": current.listPrice < previous.listPrice,
        "previous_status": previous.status,
        "current_status": current.status,
        "sold": current.status.lower() in SOLD,
        "back_on_market": current.status.lower() == ACTIVE and previous.status.lower() != ACTIVE,
    }


def _dollars(price: float) -> str:
    """$500,000, or $499,999.50 when there are cents."""
    return f"${price:,.0f}" if price == int(price) else f"${price:,.2f}"


# -- stopping them ----------------------------------------------------------------

def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(settings().secret_key, salt="favsync-unsubscribe")


def unsubscribe_links() -> Callable[[int], str]:
    """A function giving a client's one-click unsubscribe URL (signed; it never expires)."""
    signer = _signer()
    template = settings().unsubscribe_url

    def link(client_id: int) -> str:
        signed = signer.dumps(client_id)
        if template is None:
            return url_for("favsync_messages.unsubscribe", signed=signed, _external=True)
        return template.replace("{token}", signed)

    return link


def check_unsubscribe_link(signed: str) -> int:
    """Return the client an unsubscribe link is for, or raise 400 if it was not signed here."""
    try:
        client_id = _signer().loads(signed)
    except BadSignature:
        raise invalid_unsubscribe_link() from None
    if type(client_id) is not int:
        raise invalid_unsubscribe_link()
    return client_id


def unsubscribe(signed: str) -> None:
    """Turn listing alerts off for the client of a signed unsubscribe link (idempotent)."""
    set_alerts(check_unsubscribe_link(signed), False)


def alerts_on(client_id: int) -> bool:
    """Whether the client receives listing alerts."""
    return bool(session().scalar(sa.select(Client.alerts).where(Client.id == client_id)))


def set_alerts(client_id: int, on: bool) -> bool:
    """Turn the client's listing alerts on or off; return the new setting."""
    session().execute(
        sa.update(Client).where(Client.id == client_id).values(alerts=on)
        .execution_options(synchronize_session=False)
    )
    session().commit()
    return on

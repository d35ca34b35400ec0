"""Blueprints: agent messages, agents and listing events for brokerage servers (API key),
one-click unsubscribe for mail providers, and a client's alert preferences (Bearer)."""
from __future__ import annotations

from flask import Blueprint, g, render_template, request

from . import agents, alerts, apikeys, guards, messaging, schemas
from .auth import auth_required, authenticate

API_KEY_HEADER = "X-API-Key"

# Mounted at FAVSYNC_MESSAGES_URL_PREFIX (/api/v1).
bp = Blueprint("favsync_messages", __name__)
# Part of the favourites API, at FAVSYNC_URL_PREFIX.
preferences = Blueprint("preferences", __name__)


def _brokerage() -> int:
    """The brokerage whose API key came with the request, or 401."""
    return apikeys.brokerage_for(request.headers.get(API_KEY_HEADER))


@bp.post("/messages")
def send_message():
    """Send an agent's message to a client; every link in its email carries its token."""
    brokerage_id = _brokerage()
    body = schemas.parse(schemas.SendMessageRequest)
    return {"messages": [messaging.send(brokerage_id, body)]}, 202


@bp.get("/messages")
def list_messages():
    """Look messages up (by token, agent, client, status, time), newest first: a brokerage's
    with its API key, or a signed-in client's own with their Bearer token (no tokens shown)."""
    guards.not_stored()  # tokens, a client's messages: never in a shared cache
    if API_KEY_HEADER in request.headers or "Authorization" not in request.headers:
        scope = {"brokerage_id": _brokerage()}
    else:
        scope = {"client_id": authenticate()}
    return messaging.find(schemas.query(schemas.MessagesQuery), **scope)


@bp.get("/messages/<message_id>")
def get_message(message_id: str):
    """Return one of the brokerage's messages."""
    brokerage_id = _brokerage()
    return messaging.get(brokerage_id, schemas.path("messageId", message_id, schemas.UrlId))


@bp.delete("/messages/<message_id>")
def cancel_message(message_id: str):
    """Cancel a message whose email has not been sent (a scheduled one, say)."""
    brokerage_id = _brokerage()
    messaging.cancel(brokerage_id, schemas.path("messageId", message_id, schemas.UrlId))
    return "", 204


@bp.post("/agents")
def add_agent():
    """Add an agent to the brokerage."""
    brokerage_id = _brokerage()
    body = schemas.parse(schemas.AgentRequest)
    agent_id = agents.add(brokerage_id, body.name, body.email)
    return {"agentId": agent_id, "name": body.name, "email": body.email}, 201


@bp.post("/listings/<listing_id>/events")
def listing_event(listing_id: str):
    """Alert the clients who favourited a listing of its price or status change, once per eventId."""
    brokerage_id = _brokerage()
    listing_id = schemas.path("listing_id", listing_id, schemas.ListingId)
    event = schemas.parse(schemas.ListingEventRequest)
    answer, first_time = alerts.queue_alerts(brokerage_id, listing_id, event)
    return answer, 202 if first_time else 200


@bp.get("/messages/unsubscribe/<signed>")
def unsubscribe_page(signed: str):
    """Show a button that stops listing alerts; opening the link changes nothing (mail
    scanners follow links)."""
    alerts.check_unsubscribe_link(signed)
    return render_template("favsync/pages/unsubscribe.html", done=False)


@bp.post("/messages/unsubscribe/<signed>")
def unsubscribe(signed: str):
    """RFC 8058 one-click unsubscribe: a form POST of List-Unsubscribe=One-Click, no cookies."""
    schemas.form(schemas.UnsubscribeRequest)
    alerts.unsubscribe(signed)
    return render_template("favsync/pages/unsubscribe.html", done=True)


@preferences.get("/preferences")
@auth_required
def read_preferences():
    """Whether the signed-in client receives listing alerts."""
    return {"success": True, "alerts": alerts.alerts_on(g.client_id)}


@preferences.put("/preferences")
@auth_required
def change_preferences():
    """Turn the signed-in client's listing alerts on or off."""
    on = schemas.parse(schemas.PreferencesRequest).alerts
    return {"success": True, "alerts": alerts.set_alerts(g.client_id, on)}

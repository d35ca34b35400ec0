"""Webhook events for a CRM, signed per the Standard Webhooks specification."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from standardwebhooks.webhooks import Webhook

from .database import utcnow
from .mail import DeliveryError
from .state import state

USER_AGENT = "favsync-webhooks/1"


def payload(event_type: str, data: dict) -> dict:
    """The event as it is posted: {"type", "timestamp", "data"}."""
    return {"type": event_type, "timestamp": utcnow().isoformat(), "data": data}


def post(url: str, message_id: str, event: dict, *, timeout: float) -> None:
    """POST one signed event; raise DeliveryError unless the receiver answers 2xx.

    Every attempt is signed anew (receivers refuse old timestamps); the
    webhook-id stays the same, so a receiver can drop a repeat.
    """
    body = json.dumps(event, separators=(",", ":"))
    now = utcnow()
    signature = Webhook(state().settings.webhook_secret).sign(message_id, now, body)
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"receiver answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"receiver unreachable ({exc.__class__.__name__})") from None

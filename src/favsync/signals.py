"""Signals a host site connects to, to notify an agent or feed a CRM."""
import logging

from blinker import Namespace
from flask import current_app

log = logging.getLogger("favsync.signals")
_signals = Namespace()

#: An email was verified and is now a client (a lead) of a brokerage. Sent after
#: commit with: session_id (the anonymous X-Session-ID, or None), client_id,
#: brokerage_id, email, created (True the first time: a new lead). Receivers
#: should take **extra: later versions may send more.
client_verified = _signals.signal("favsync.client-verified")

#: A client's favourites changed. Sent after commit with: client_id, added, removed.
favorites_changed = _signals.signal("favsync.favorites-changed")


def notify(signal, **data) -> None:
    """Send `signal` for the current app; a failing receiver is logged, never raised.

    The change is committed by then: a host's hook (a CRM call, say) must not
    turn a visitor's successful login or sync into an error.
    """
    app = current_app._get_current_object()
    for receiver in signal.receivers_for(app):
        try:
            receiver(app, **data)
        except Exception:
            log.exception("a %s receiver failed", signal.name)

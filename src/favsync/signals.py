"""Signals a host site connects to, to notify an agent or feed a CRM."""
from blinker import Namespace

_signals = Namespace()

#: An email was verified and is now a client (a lead) of a brokerage. Sent after
#: commit with: session_id (the anonymous X-Session-ID, or None), client_id,
#: brokerage_id, email.
client_verified = _signals.signal("favsync.client-verified")

#: A client's favourites changed. Sent after commit with: client_id, added, removed.
favorites_changed = _signals.signal("favsync.favorites-changed")

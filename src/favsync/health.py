"""Blueprint for the standalone service: liveness and readiness probes."""
import sqlalchemy as sa
from flask import Blueprint
from sqlalchemy.exc import SQLAlchemyError

from . import outbox
from .database import again_if_disconnected, session
from .state import state
from .worker import broker_reachable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Answer while the process is alive."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Answer 200 when the database and the rate-limit storage are reachable, else 503.

    Also report the delivery backlog and the broker; neither fails readiness:
    this process serves visitors all the same, and the outbox keeps every email.
    """
    failing = []
    delivery = {}
    try:
        again_if_disconnected(_ping)
        delivery["oldest_undelivered_seconds"] = outbox.oldest_queued_age()
    except SQLAlchemyError:
        failing.append("database")
    if not state().limits.storage_reachable():
        failing.append("rate_limit_storage")
    if state().celery is not None:
        delivery["broker"] = "reachable" if broker_reachable(state().celery) else "unreachable"
    if failing:
        return {"status": "unavailable", "failing": failing, "delivery": delivery}, 503
    return {"status": "ok", "delivery": delivery}


def _ping() -> None:
    # Its own connection, so a dead one never lingers in the request's session.
    with session().get_bind().connect() as connection:
        connection.execute(sa.text("SELECT 1"))

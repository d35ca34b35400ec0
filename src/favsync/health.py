"""Blueprint for the standalone service: liveness and readiness probes."""
import sqlalchemy as sa
from flask import Blueprint
from sqlalchemy.exc import SQLAlchemyError

from .database import session
from .state import state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Answer while the process is alive."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Answer 200 when the database and the rate-limit storage are reachable, else 503."""
    failing = []
    try:
        # Its own connection, so a dead one never lingers in the request's session.
        with session().get_bind().connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except SQLAlchemyError:
        failing.append("database")
    if not state().limits.storage_reachable():
        failing.append("rate_limit_storage")
    if failing:
        return {"status": "unavailable", "failing": failing}, 503
    return {"status": "ok"}

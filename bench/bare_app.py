"""The least-work reference: what favsync's read path costs on this stack at the least.

Flask, PyJWT and psycopg 3; no ORM, no pydantic, no request log, no rate limits.
It does the work favsync's contract asks of an authenticated read and nothing
more: the same JWT checks as favsync's decode_auth_token, the same client check
(exists, the token's and the host's brokerage, not logged out everywhere, the
session live) and the list with its version, in ONE statement on an autocommit
connection (no BEGIN/COMMIT round trips). A sync that adds ids then takes the
client's advisory lock and writes them in one INSERT: three statements in all, in
two round trips (the lock and the INSERT go in one pipeline with BEGIN and COMMIT).

One connection pool per worker process, opened on the first request (after
gunicorn's fork), as large as the worker's threads (BENCH_THREADS, default 4).
"""
import hashlib
import os
import threading

import jwt
from flask import Flask, request
from psycopg_pool import ConnectionPool

app = Flask(__name__)
# Read with .get: bench/run.py imports this module for its SQL (EXPLAIN).
DSN = os.environ.get("BENCH_DSN")
KEY = os.environ.get("FAVSYNC_SECRET_KEY")
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
# As favsync's tokens.py.
REQUIRED_CLAIMS = ["client_id", "brokerage_id", "email", "exp", "iat", "type", "sid"]
LEEWAY_SECONDS = 5
TOKEN_TYPE = "favorites_auth"
# As favsync's defaults: FAVSYNC_MAX_FAVORITES, and the listing_id column's length.
MAX_FAVORITES = 500
MAX_LISTING_ID = 50
DEFAULT_BROKERAGE_ID = 1
REVALIDATE = {"Cache-Control": "private, no-cache"}

# The client check and its live favourites with its version, in one statement.
# The version is the newest of ALL its rows (tombstones too) or its purge
# horizon. The subqueries name the client by parameter, not by c.id (the same
# client), so that PostgreSQL runs each once (an InitPlan), not once per favourite.
READ = """
SELECT greatest((SELECT coalesce(max(a.version), 0) FROM favsync_favorites a
                 WHERE a.client_id = %(client)s), c.favorites_horizon),
       f.listing_id
FROM favsync_clients c
LEFT JOIN favsync_favorites f ON f.client_id = c.id AND f.removed_at IS NULL
WHERE c.id = %(client)s
  AND c.brokerage_id = %(brokerage)s
  AND c.brokerage_id = (SELECT b.id FROM favsync_brokerages b
                        WHERE b.domain = %(domain)s OR b.id = 1
                        ORDER BY b.id = 1 LIMIT 1)
  AND c.email = %(email)s
  AND c.tokens_valid_after <= %(iat)s
  AND EXISTS (SELECT 1 FROM favsync_refresh_tokens r
              WHERE r.family = %(sid)s AND r.client_id = %(client)s
                AND r.revoked_at IS NULL AND r.expires_at > now())
ORDER BY f.added_version, f.id
"""

# The new favourites at the next version, in the order sent (their ids follow
# it, and so does the list). Writes nothing if a sync moved the version since
# the read: then the caller reads again, under the lock. A conflict is a
# tombstone hearted again; favsync also drops pairs of toggles older than the
# horizon from its history, which no bench client has.
ADD = """
INSERT INTO favsync_favorites
    (client_id, listing_id, created_at, version, added_version, removed_at, history)
SELECT %(client)s, new.listing_id, now(), %(version)s, %(version)s, NULL, %(version)s::text
FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS new(listing_id, n)
WHERE NOT EXISTS (SELECT 1 FROM favsync_favorites
                  WHERE client_id = %(client)s AND version > %(read)s)
ORDER BY new.n
ON CONFLICT (client_id, listing_id) DO UPDATE SET
    created_at = excluded.created_at, version = excluded.version,
    added_version = excluded.added_version, removed_at = NULL,
    history = favsync_favorites.history || ' ' || excluded.history
"""

LOCK = "SELECT pg_advisory_xact_lock(%s)"

_pool = None
_pool_lock = threading.Lock()


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


@app.errorhandler(Refused)
def refused(error: Refused):
    return {"success": False, "error": error.message}, error.status


def pool() -> ConnectionPool:
    """This worker process's pool, opened on first use: after the fork, never inherited."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                # Each statement planned once per connection, as favsync's are.
                _pool = ConnectionPool(DSN, min_size=1, max_size=THREADS, open=True, kwargs={
                    "autocommit": True, "options": "-c plan_cache_mode=force_generic_plan"})
    return _pool


def claims() -> dict:
    """The claims of a valid favourites JWT, checked as favsync's decode_auth_token does."""
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    try:
        decoded = jwt.decode_complete(token, KEY, algorithms=["HS256"],
                                      options={"require": REQUIRED_CLAIMS}, leeway=LEEWAY_SECONDS)
    except jwt.InvalidTokenError:
        raise Refused(401, "The auth token is not valid.") from None
    found = decoded["payload"]
    if (decoded["header"].get("kid") is not None  # the reference holds the one unnamed key
            or found["type"] != TOKEN_TYPE
            or not all(is_int64(found[name]) for name in ("client_id", "brokerage_id", "iat"))
            or not isinstance(found["email"], str) or not isinstance(found["sid"], str)):
        raise Refused(401, "The auth token is not valid.")
    return found


def is_int64(value) -> bool:
    return type(value) is int and -(2**63) <= value < 2**63


def host_domain() -> str:
    """The request's host without its port, as favsync's Brokerage._of_host takes it."""
    host = request.host
    return host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host.lower()


def read(connection, token: dict) -> tuple[int, list[str]]:
    """The client's version and live favourites, if the token's client may read them."""
    rows = connection.execute(READ, {
        "client": token["client_id"], "brokerage": token["brokerage_id"], "domain": host_domain(),
        "email": token["email"], "iat": token["iat"], "sid": token["sid"],
    }).fetchall()
    if not rows:
        raise Refused(401, "The auth token is not valid.")
    return rows[0][0], [listing_id for _, listing_id in rows if listing_id is not None]


def lock_key(client_id: int) -> int:
    """favsync's advisory lock for the client's favourites (database.serialize)."""
    digest = hashlib.sha256(f"favsync:favorites:{client_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def incoming_ids() -> list[str]:
    """The sync body's favourites, deduplicated in order; 400 or 422 if malformed."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused(400, "The body must be a JSON object.")
    favorites = body.get("favorites")
    if (not isinstance(favorites, list) or len(favorites) > MAX_FAVORITES
            or not all(isinstance(i, str) and 0 < len(i) <= MAX_LISTING_ID for i in favorites)):
        raise Refused(422, f"favorites: a list of at most {MAX_FAVORITES} listing ids.")
    return list(dict.fromkeys(favorites))


def missing(incoming: list[str], held: list[str]) -> list[str]:
    known = set(held)
    new = [listing_id for listing_id in incoming if listing_id not in known]
    if len(held) + len(new) > MAX_FAVORITES:
        raise Refused(422, f"A client can keep at most {MAX_FAVORITES} favourites.")
    return new


def add(connection, client_id: int, version: int, new: list[str]):
    """Write `new` at version + 1, unless the version moved; return the cursor (its rowcount)."""
    return connection.execute(ADD, {"client": client_id, "version": version + 1,
                                    "read": version, "ids": new})


def write(connection, client_id: int, version: int, new: list[str]) -> int:
    """Take the client's lock and write `new` at version + 1; return the rows written.

    BEGIN, the lock, the INSERT and COMMIT go in one pipeline: one round trip.
    (Not connection.transaction(): in a pipeline it still waits for BEGIN and COMMIT.)
    0 rows: another sync moved the version between the read and the lock.
    """
    with connection.pipeline():
        connection.execute("BEGIN")
        connection.execute(LOCK, (lock_key(client_id),))
        written = add(connection, client_id, version, new)
        connection.execute("COMMIT")
    return written.rowcount


def write_after_reading(connection, token: dict, incoming: list[str]):
    """The rare path: read again under the lock, so that no other sync can move the version."""
    with connection.transaction():
        connection.execute(LOCK, (lock_key(token["client_id"]),))
        version, held = read(connection, token)
        new = missing(incoming, held)
        if new:
            add(connection, token["client_id"], version, new)
    return version, held, new


@app.get("/api/v1/favorites")
def list_favorites():
    token = claims()
    with pool().connection() as connection:
        version, favorites = read(connection, token)
    etag = {"ETag": f'"favsync-{token["client_id"]}-{version}"', **REVALIDATE}
    return {"success": True, "favorites": favorites, "version": version}, etag


@app.post("/api/v1/favorites/sync")
def sync():
    token = claims()
    incoming = incoming_ids()
    with pool().connection() as connection:
        version, held = read(connection, token)
        new = missing(incoming, held)
        if new and not write(connection, token["client_id"], version, new):
            version, held, new = write_after_reading(connection, token, incoming)
    if new:
        version += 1
    return {"success": True, "favorites": held + new, "version": version}

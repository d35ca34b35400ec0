"""The bare-stack reference: a minimal Flask app that decodes the same JWT and runs
the same SQL as favsync with one raw psycopg connection per worker. It has none of
favsync's validation, limits, logging or ORM: its throughput is this stack's ceiling."""
import hashlib
import os
import secrets
import smtplib
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

import jwt
import psycopg
from flask import Flask, abort, request

app = Flask(__name__)
DSN = os.environ["BENCH_DSN"]
KEY = os.environ["FAVSYNC_SECRET_KEY"]
SMTP_PORT = int(os.environ["FAVSYNC_MAIL_PORT"])
_connection = None


def db():
    global _connection  # one per worker process, opened after the fork
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(DSN)
    return _connection


def client_id(cur) -> int:
    token = request.headers.get("Authorization", "")[7:]
    try:
        claims = jwt.decode(token, KEY, algorithms=["HS256"],
                            options={"require": ["client_id", "brokerage_id", "email", "exp", "iat", "type"]})
    except jwt.InvalidTokenError:
        abort(401)
    cur.execute(
        "SELECT id FROM favsync_clients WHERE id = %s AND brokerage_id = %s AND email = %s"
        " AND tokens_valid_after <= %s",
        (claims["client_id"], claims["brokerage_id"], claims["email"], claims["iat"]),
    )
    if cur.fetchone() is None:
        abort(401)
    return claims["client_id"]


def ids(cur, client: int) -> list[str]:
    cur.execute("SELECT listing_id FROM favsync_favorites WHERE client_id = %s ORDER BY id", (client,))
    return [row[0] for row in cur.fetchall()]


@app.get("/api/v1/favorites")
def list_favorites():
    with db().transaction(), db().cursor() as cur:
        return {"success": True, "favorites": ids(cur, client_id(cur))}


@app.post("/api/v1/favorites/sync")
def sync():
    incoming = request.get_json()["favorites"]
    with db().transaction(), db().cursor() as cur:
        client = client_id(cur)
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (client,))
        existing = ids(cur, client)
        known = set(existing)
        added = [i for i in dict.fromkeys(incoming) if i not in known]
        if added:
            cur.execute(
                "INSERT INTO favsync_favorites (client_id, listing_id, created_at)"
                " SELECT %s, unnest(%s::text[]), now() ON CONFLICT DO NOTHING",
                (client, added),
            )
        return {"success": True, "favorites": existing + added}


@app.post("/api/v1/favorites/magic-link")
def magic_link():
    email = request.get_json()["email"].strip().lower()
    now = datetime.now(timezone.utc)
    secret = secrets.token_urlsafe(32)
    with db().transaction(), db().cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (email,))
        cur.execute(
            "SELECT count(*) FROM favsync_magic_links WHERE email = %s AND used_at IS NULL"
            " AND expires_at > %s AND created_at > %s",
            (email, now, now - timedelta(minutes=15)),
        )
        if cur.fetchone()[0] >= 3:
            abort(429)
        cur.execute(
            "INSERT INTO favsync_magic_links (brokerage_id, email, token, expires_at, created_at)"
            " VALUES (1, %s, %s, %s, %s)",
            (email, hashlib.sha256(secret.encode()).hexdigest(), now + timedelta(minutes=15), now),
        )
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = "Sign in", "bench@localhost", email
    message.set_content(f"http://localhost/api/v1/favorites/verify/{secret}")
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=10) as smtp:
        smtp.send_message(message)
    return {"success": True, "message": "sent"}, 202

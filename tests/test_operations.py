"""Health probes, request logs, and housekeeping from the command line."""
import logging
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from conftest import API, VISITOR, Auth, MagicLink, RefreshToken, count, database, rows

UNREACHABLE_STORE = "redis://127.0.0.1:9/0"  # discard port: nothing there


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {
        "status": "ok", "delivery": {"oldest_undelivered_seconds": None},
    }


def test_readyz_reports_the_delivery_backlog_and_the_broker_without_failing(make_app, inbox):
    closed_broker = "amqp://guest:guest@127.0.0.1:9//"  # discard port: nothing there
    app = make_app(FAVSYNC_CELERY_BROKER_URL=closed_broker)
    Auth(app.test_client(), inbox).request_link()  # queued: no worker, no broker
    with database(app) as session:
        session.execute(sa.text(
            "UPDATE favsync_outbox SET created_at = :then"), {"then": datetime.now(timezone.utc) - timedelta(minutes=5)})

    response = app.test_client().get("/readyz")

    assert response.status_code == 200
    delivery = response.json["delivery"]
    assert delivery["broker"] == "unreachable"
    assert 299 <= delivery["oldest_undelivered_seconds"] < 400


@pytest.fixture
def unreachable_database(tmp_path):
    return {"FAVSYNC_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"}


def test_readyz_names_an_unreachable_database(make_app, unreachable_database):
    response = make_app(**unreachable_database).test_client().get("/readyz")

    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "failing": ["database"], "delivery": {}}


def test_readyz_names_an_unreachable_rate_limit_store(make_app):
    response = make_app(FAVSYNC_RATELIMIT_STORAGE_URI=UNREACHABLE_STORE).test_client().get("/readyz")

    assert response.status_code == 503
    assert response.json["failing"] == ["rate_limit_storage"]


def test_an_unreachable_database_is_a_503_not_a_500(make_app, inbox, unreachable_database):
    app = make_app(**unreachable_database)

    response = Auth(app.test_client(), inbox).request_link("v@example.com")

    assert response.status_code == 503
    assert response.json["error"]["code"] == "database_unavailable"


def test_one_log_line_per_request_without_secrets(auth, inbox, caplog):
    caplog.set_level(logging.INFO, logger="favsync")
    auth.request_link()
    secret = inbox.secret_for(VISITOR)
    response = auth.follow(inbox.link_for(VISITOR), headers={"X-Request-ID": "req-42"})
    token = response.json["auth_token"]

    request_lines = [r.getMessage() for r in caplog.records if r.name == "favsync.requests"]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert len(request_lines) == 2
    assert request_lines[1].startswith(f"req-42 GET {API}/verify/*** 200 ")
    assert response.headers["X-Request-ID"] == "req-42"
    assert secret not in everything and token not in everything
    assert VISITOR not in everything
    assert "v***@example.com" in everything


@pytest.mark.parametrize("path", ["/verify//{}", "/verify///{}", "/verify/{}/more", "/verify/x/{}"])
def test_the_log_masks_everything_after_verify_however_many_slashes(auth, inbox, caplog, path):
    caplog.set_level(logging.INFO, logger="favsync")
    auth.request_link()
    secret = inbox.secret_for(VISITOR)

    auth.follow(f"http://localhost{API}{path.format(secret)}")

    [line] = [r.getMessage() for r in caplog.records
              if r.name == "favsync.requests" and "/verify" in r.getMessage()]
    assert f"{API}/verify/*** " in line
    assert secret not in caplog.text


@pytest.mark.parametrize("request_id", ["", "x" * 65, "has space", "semi;colon"])
def test_an_unusable_request_id_is_replaced(client, request_id):
    response = client.get("/healthz", headers={"X-Request-ID": request_id})

    assert len(response.headers["X-Request-ID"]) == 32


def test_made_request_ids_differ_between_requests_and_between_worker_processes(client):
    import os

    from favsync.requestlog import new_request_id

    made = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a gunicorn worker, forked from the process that imported favsync
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    in_child = os.read(read, 64).decode()
    os.close(read), os.close(write)

    assert len(made) == 3 and all(len(request_id) == 32 for request_id in made)
    assert in_child[:16] not in {request_id[:16] for request_id in made}


# Run apart: loading gunicorn.conf.py changes logging and gunicorn for its whole process.
_FORMATTER_CHECK = """
import logging, runpy, sys
conf = runpy.run_path("gunicorn.conf.py")
ours, logging_own = conf["_LineFormatter"](conf["_LINE"]), logging.Formatter(conf["_LINE"])
ours.converter = logging_own.converter
plain = logging.LogRecord("favsync.requests", logging.INFO, "", 0, "%s GET %s %.1fms", ("id", "/", 1.25), None)
try:
    1 / 0
except ZeroDivisionError:
    failed = logging.LogRecord("favsync", logging.ERROR, "", 0, "failed", (), sys.exc_info())
for record in (plain, failed):
    assert ours.format(record) == logging_own.format(record), (ours.format(record), logging_own.format(record))
assert "ZeroDivisionError" in ours.format(failed)
"""


def test_the_log_line_formatter_writes_what_logging_would():
    import subprocess
    import sys
    from pathlib import Path

    checked = subprocess.run([sys.executable, "-c", _FORMATTER_CHECK], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1])

    assert checked.returncode == 0, checked.stderr


def test_purge_deletes_links_expired_or_used_before_the_cutoff(app, runner):
    now = datetime.now(timezone.utc)
    ages = {"old-expired": (9, None), "old-used": (1, 8), "recent-expired": (2, None), "pending": (-1, None)}
    with database(app) as session:
        for name, (expired_days_ago, used_days_ago) in ages.items():
            session.add(MagicLink(
                brokerage_id=1, email=f"{name}@example.com", token=name.ljust(64, "0"),
                expires_at=now - timedelta(days=expired_days_ago),
                used_at=None if used_days_ago is None else now - timedelta(days=used_days_ago),
            ))

    result = runner.invoke(args=["favsync", "purge", "--days", "7"])

    assert result.exit_code == 0
    assert result.output.strip() == "purged 2 magic links, 0 refresh tokens, 0 tombstones, 0 sync sessions and 0 outbox messages"
    left = rows(app, sa.select(MagicLink.email).order_by(MagicLink.email))
    assert left == ["pending@example.com", "recent-expired@example.com"]


@pytest.mark.parametrize("command", [["brokerage", "add"], ["add-brokerage"]])
def test_add_brokerage(app, runner, auth, inbox, command):
    result = runner.invoke(args=["favsync", *command, "--name", "Lakeside", "--domain", "Lakeside.Example"])

    assert result.output.strip() == "brokerage 2: Lakeside (lakeside.example)"
    auth.request_link("v@example.com", headers={"Host": "lakeside.example"})
    assert inbox.to("v@example.com")[0]["Subject"] == "Your sign-in link for Lakeside"


def test_rename_the_default_brokerage_and_list_them(runner, auth, inbox):
    runner.invoke(args=["favsync", "brokerage", "add", "--name", "Lakeside", "--domain", "lakeside.example"])

    renamed = runner.invoke(args=["favsync", "brokerage", "rename", "1", "--name", "Homes & Co"])
    listed = runner.invoke(args=["favsync", "brokerage", "list"])

    assert renamed.output.strip() == "brokerage 1: Homes & Co (every other host)"
    assert listed.output.splitlines() == ["brokerage 1: Homes & Co (every other host)",
                                          "brokerage 2: Lakeside (lakeside.example)"]
    auth.request_link("v@example.com")
    assert inbox.to("v@example.com")[0]["Subject"] == "Your sign-in link for Homes & Co"


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (["rename", "7", "--name", "X"], "Error: there is no brokerage 7; see: brokerage list"),
        (["add", "--name", "X", "--domain", "LOCALHOST"], "Error: a brokerage already serves localhost"),
    ],
)
def test_brokerage_commands_refuse_with_a_message(runner, command, error):
    runner.invoke(args=["favsync", "brokerage", "add", "--name", "Local", "--domain", "localhost"])

    result = runner.invoke(args=["favsync", "brokerage", *command])

    assert result.exit_code == 1
    assert result.output.strip() == error


def test_purge_deletes_refresh_tokens_that_ended_before_the_cutoff(app, runner, auth, client):
    auth.login()
    client.post(f"{API}/token/refresh", json={})  # one rotated token, one live
    with database(app) as session:
        rotated = session.scalar(sa.select(RefreshToken).where(RefreshToken.rotated_at.is_not(None)))
        rotated.rotated_at -= timedelta(days=8)

    result = runner.invoke(args=["favsync", "purge"])

    assert result.output.strip() == "purged 0 magic links, 1 refresh tokens, 0 tombstones, 0 sync sessions and 0 outbox messages"
    assert count(app, RefreshToken) == 1


@pytest.mark.parametrize("line, masked", [
    ("GET /favs/verify%2FS3cret HTTP/1.1", "GET /favs/verify/*** HTTP/1.1"),  # routed as /verify/
    ("GET /favs%2F%76erify%2fS3cret?x=1 HTTP/1.1", "GET /favs/verify/*** HTTP/1.1"),
    ("\x1b[31mPOST /favs/verify/S3cret\x1b[0m", "\x1b[31mPOST /favs/verify/***\x1b[0m"),  # colour kept
    ("GET /demo/verify?next=/x&token=S3cret HTTP/1.1", "GET /demo/verify?next=/x&token=*** HTTP/1.1"),
    ("GET /demo/verify?%74oken=S3cret HTTP/1.1", "GET /demo/verify?token=*** HTTP/1.1"),
])
def test_a_request_line_as_sent_is_logged_without_its_secret(line, masked):
    # What werkzeug's development server logs: the URL as the client sent it.
    from favsync.requestlog import mask_request_line

    assert mask_request_line(line) == masked

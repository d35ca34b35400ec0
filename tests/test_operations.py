"""Health probes, request logs, housekeeping and a rate-limit store that goes away."""
import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa

from favsync import create_app
from favsync.database import session, utcnow
from favsync.models import MagicLink

from conftest import API


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ok"}


def test_readyz_names_an_unreachable_database(config, tmp_path):
    config["FAVSYNC_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"
    response = create_app(config).test_client().get("/readyz")

    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "failing": ["database"]}


def test_readyz_names_an_unreachable_rate_limit_store(config):
    config["FAVSYNC_RATELIMIT_STORAGE_URI"] = "redis://127.0.0.1:9/0"  # discard port: nothing there
    response = create_app(config).test_client().get("/readyz")

    assert response.status_code == 503
    assert response.json["failing"] == ["rate_limit_storage"]


def test_an_unreachable_database_is_a_503_not_a_500(config, tmp_path):
    config["FAVSYNC_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"
    response = create_app(config).test_client().post(f"{API}/magic-link", json={"email": "v@example.com"})

    assert response.status_code == 503
    assert response.json["error"]["code"] == "database_unavailable"


def test_without_its_store_the_limits_apply_per_process(config, inbox):
    config["FAVSYNC_RATELIMIT_STORAGE_URI"] = "redis://127.0.0.1:9/0"
    config["FAVSYNC_RATELIMIT_MAGIC_LINK_PER_EMAIL"] = "2 per hour"
    client = create_app(config).test_client()

    statuses = [
        client.post(f"{API}/magic-link", json={"email": "v@example.com"}).status_code
        for _ in range(3)
    ]

    assert statuses == [202, 202, 429]


def test_one_log_line_per_request_without_secrets(auth, inbox, client, caplog):
    caplog.set_level(logging.INFO, logger="favsync")
    auth.request_link("visitor@example.com")
    link = inbox.link_for("visitor@example.com")
    secret = link.rsplit("/", 1)[1]
    response = client.get(link.split("localhost", 1)[1], headers={"X-Request-ID": "req-42"})
    token = response.json["auth_token"]

    request_lines = [r.getMessage() for r in caplog.records if r.name == "favsync.requests"]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert len(request_lines) == 2
    assert request_lines[1].startswith(f"req-42 GET {API}/verify/*** 200 ")
    assert response.headers["X-Request-ID"] == "req-42"
    assert secret not in everything and token not in everything
    assert "visitor@example.com" not in everything
    assert "v***@example.com" in everything


@pytest.mark.parametrize("request_id", ["", "x" * 65, "has space", "semi;colon"])
def test_an_unusable_request_id_is_replaced(client, request_id):
    response = client.get("/healthz", headers={"X-Request-ID": request_id})

    assert len(response.headers["X-Request-ID"]) == 32


def test_purge_deletes_links_expired_or_used_before_the_cutoff(app, runner):
    now = utcnow()
    ages = {"old-expired": (9, None), "old-used": (1, 8), "recent-expired": (2, None), "pending": (-1, None)}
    with app.app_context():
        for name, (expired_days_ago, used_days_ago) in ages.items():
            session().add(MagicLink(
                brokerage_id=1, email=f"{name}@example.com", token=name.ljust(64, "0"),
                expires_at=now - timedelta(days=expired_days_ago),
                used_at=None if used_days_ago is None else now - timedelta(days=used_days_ago),
            ))
        session().commit()

    result = runner.invoke(args=["favsync", "purge", "--days", "7"])

    assert result.exit_code == 0
    assert result.output.strip() == "purged 2 magic links, 0 refresh tokens, 0 tombstones and 0 sync sessions"
    with app.app_context():
        left = session().scalars(sa.select(MagicLink.email).order_by(MagicLink.email)).all()
    assert left == ["pending@example.com", "recent-expired@example.com"]


def test_add_brokerage(app, runner, auth, inbox):
    result = runner.invoke(args=["favsync", "add-brokerage", "--name", "Lakeside", "--domain", "Lakeside.Example"])

    assert result.output.strip() == "brokerage 2: Lakeside (lakeside.example)"
    auth.request_link("v@example.com", headers={"Host": "lakeside.example"})
    assert inbox.to("v@example.com")[0]["Subject"] == "Your sign-in link for Lakeside"


def test_purge_deletes_refresh_tokens_that_ended_before_the_cutoff(app, runner, auth, client):
    from favsync.models import RefreshToken

    auth.login()
    client.post(f"{API}/token/refresh")  # one rotated token, one live
    with app.app_context():
        rotated = session().scalar(sa.select(RefreshToken).where(RefreshToken.rotated_at.is_not(None)))
        rotated.rotated_at -= timedelta(days=8)
        session().commit()

    result = runner.invoke(args=["favsync", "purge"])

    assert result.output.strip() == "purged 0 magic links, 1 refresh tokens, 0 tombstones and 0 sync sessions"
    with app.app_context():
        assert session().scalar(sa.select(sa.func.count()).select_from(RefreshToken)) == 1

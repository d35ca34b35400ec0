import time
from datetime import timedelta

import jwt
import pytest
import sqlalchemy as sa

from favsync import client_verified, create_app
from favsync.database import session
from favsync.models import Client, MagicLink

from conftest import API, Auth

SESSION_ID = "550e8400-e29b-41d4-a716-446655440000"


def claims_of(token, config):
    return jwt.decode(token, config["FAVSYNC_SECRET_KEY"], algorithms=["HS256"])


def test_following_the_link_logs_the_visitor_in(auth, inbox, config):
    auth.request_link("visitor@example.com")

    response = auth.follow(inbox.link_for("visitor@example.com"))

    assert response.status_code == 200
    body = response.json
    assert set(body) == {"success", "client_id", "auth_token", "favorites", "email", "version"}
    assert body["success"] is True
    assert body["favorites"] == []
    assert body["email"] == "visitor@example.com"
    assert isinstance(body["client_id"], int)


def test_the_auth_token_carries_exactly_the_seed_claims(auth, config):
    before = int(time.time())
    body = auth.login("visitor@example.com")

    claims = claims_of(body["auth_token"], config)
    assert set(claims) == {"client_id", "brokerage_id", "email", "exp", "iat", "type"}
    assert claims["client_id"] == body["client_id"]
    assert claims["brokerage_id"] == 1
    assert claims["email"] == "visitor@example.com"
    assert claims["type"] == "favorites_auth"
    assert before <= claims["iat"] <= time.time()
    assert claims["exp"] - claims["iat"] == 90 * 24 * 3600
    assert jwt.get_unverified_header(body["auth_token"])["alg"] == "HS256"


def test_the_auth_token_lifetime_is_configurable(config, inbox):
    config["FAVSYNC_AUTH_TOKEN_TTL"] = 3600
    body = Auth(create_app(config).test_client(), inbox).login("visitor@example.com")

    claims = claims_of(body["auth_token"], config)
    assert claims["exp"] - claims["iat"] == 3600


def test_a_second_login_finds_the_same_client(auth, app):
    first = auth.login("visitor@example.com")
    second = auth.login("Visitor@Example.com")

    assert second["client_id"] == first["client_id"]
    with app.app_context():
        assert session().scalar(sa.select(sa.func.count()).select_from(Client)) == 1


def test_links_the_anonymous_session_to_the_client(auth, app):
    received = []

    def on_verified(sender, **extra):
        received.append(extra)

    with client_verified.connected_to(on_verified, app):
        body = auth.login("visitor@example.com", headers={"X-Session-ID": SESSION_ID})
        auth.login("visitor@example.com")  # a returning lead: created is false

    assert received == [
        {"session_id": SESSION_ID, "client_id": body["client_id"], "brokerage_id": 1,
         "email": "visitor@example.com", "created": True},
        {"session_id": None, "client_id": body["client_id"], "brokerage_id": 1,
         "email": "visitor@example.com", "created": False},
    ]
    with app.app_context():
        link = session().scalar(sa.select(MagicLink).order_by(MagicLink.id).limit(1))
        assert (link.session_id, link.client_id) == (SESSION_ID, body["client_id"])
        assert link.used_at is not None


def test_a_link_works_once(auth, inbox):
    auth.request_link("visitor@example.com")
    link = inbox.link_for("visitor@example.com")
    assert auth.follow(link).status_code == 200

    response = auth.follow(link)

    assert response.status_code == 410
    assert response.json["error"]["code"] == "token_used"


def test_an_expired_link_is_refused(auth, inbox, app):
    auth.request_link("visitor@example.com")
    with app.app_context():
        link = session().scalar(sa.select(MagicLink))
        link.expires_at = link.expires_at - timedelta(minutes=15, seconds=1)
        session().commit()

    response = auth.follow(inbox.link_for("visitor@example.com"))

    assert response.status_code == 410
    assert response.json["error"]["code"] == "token_expired"
    with app.app_context():
        assert session().scalar(sa.select(MagicLink.used_at)) is None


@pytest.mark.parametrize(
    "token",
    ["A" * 43, "short", "A" * 44, "A" * 42 + "!", "%00" * 3, "A" * 42 + "."],
)
def test_an_unknown_or_malformed_link_is_refused(client, token):
    response = client.get(f"{API}/verify/{token}")

    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_token"


def test_head_never_consumes_a_link(auth, inbox, client):
    auth.request_link("visitor@example.com")
    link = inbox.link_for("visitor@example.com")

    assert client.head(link.split("localhost", 1)[1]).status_code == 204
    assert auth.follow(link).status_code == 200

"""Following the link from the email: who is logged in, with what token, and only once."""
import time
from datetime import timedelta

import jwt
import pytest
import sqlalchemy as sa

from favsync import client_verified

from conftest import (
    API, VISITOR, Auth, Client, MagicLink, RefreshToken, count, database, rows, signalled,
)

SESSION_ID = "550e8400-e29b-41d4-a716-446655440000"


def claims_of(token, config):
    return jwt.decode(token, config["FAVSYNC_SECRET_KEY"], algorithms=["HS256"])


def test_following_the_link_logs_the_visitor_in(auth, inbox, config):
    auth.request_link()

    response = auth.follow(inbox.link_for(VISITOR))

    assert response.status_code == 200
    body = response.json
    assert set(body) == {"success", "client_id", "auth_token", "favorites", "email", "version", "same_browser"}
    assert body["success"] is True
    assert body["favorites"] == []
    assert body["email"] == VISITOR
    assert isinstance(body["client_id"], int)


def test_the_auth_token_carries_the_seed_claims_and_its_session(auth, config, app):
    before = int(time.time())
    body = auth.login()

    claims = claims_of(body["auth_token"], config)
    assert set(claims) == {"client_id", "brokerage_id", "email", "exp", "iat", "type", "sid"}
    assert rows(app, sa.select(RefreshToken.family)) == [claims["sid"]]
    assert claims["client_id"] == body["client_id"]
    assert claims["brokerage_id"] == 1
    assert claims["email"] == VISITOR
    assert claims["type"] == "favorites_auth"
    assert before <= claims["iat"] <= time.time()
    assert claims["exp"] - claims["iat"] == 90 * 24 * 3600
    assert jwt.get_unverified_header(body["auth_token"])["alg"] == "HS256"


def test_the_auth_token_lifetime_is_configurable(make_app, config, inbox):
    body = Auth(make_app(FAVSYNC_AUTH_TOKEN_TTL=3600).test_client(), inbox).login()

    claims = claims_of(body["auth_token"], config)
    assert claims["exp"] - claims["iat"] == 3600


def test_a_second_login_finds_the_same_client(auth, app):
    first = auth.login()
    second = auth.login("Visitor@Example.com")

    assert second["client_id"] == first["client_id"]
    assert count(app, Client) == 1


def test_links_the_anonymous_session_to_the_client(auth, app):
    with signalled(client_verified, app) as received:
        body = auth.login(VISITOR, headers={"X-Session-ID": SESSION_ID})
        auth.login(VISITOR)  # a returning lead: created is false

    assert received == [
        {"session_id": SESSION_ID, "client_id": body["client_id"], "brokerage_id": 1,
         "email": VISITOR, "created": True},
        {"session_id": None, "client_id": body["client_id"], "brokerage_id": 1,
         "email": VISITOR, "created": False},
    ]
    link = rows(app, sa.select(MagicLink).order_by(MagicLink.id))[0]
    assert (link.session_id, link.client_id) == (SESSION_ID, body["client_id"])
    assert link.used_at is not None


def test_a_link_works_once(auth, inbox):
    auth.request_link()
    link = inbox.link_for(VISITOR)
    assert auth.follow(link).status_code == 200

    response = auth.follow(link)

    assert response.status_code == 410
    assert response.json["error"]["code"] == "token_used"


def test_an_expired_link_is_refused(auth, inbox, app):
    auth.request_link()
    with database(app) as session:
        link = session.scalar(sa.select(MagicLink))
        link.expires_at = link.expires_at - timedelta(minutes=15, seconds=1)

    response = auth.follow(inbox.link_for(VISITOR))

    assert response.status_code == 410
    assert response.json["error"]["code"] == "token_expired"
    assert rows(app, sa.select(MagicLink.used_at)) == [None]


@pytest.mark.parametrize(
    "token",
    ["A" * 43, "short", "A" * 44, "A" * 42 + "!", "%00" * 3, "A" * 42 + "."],
)
def test_an_unknown_or_malformed_link_is_refused(client, token):
    response = client.get(f"{API}/verify/{token}")

    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_token"


def test_head_never_consumes_a_link(auth, inbox):
    auth.request_link()
    link = inbox.link_for(VISITOR)

    assert auth.follow(link, method="HEAD").status_code == 204
    assert auth.follow(link).status_code == 200

"""Asking for a sign-in link: the email, what is stored, what is refused, and the pending-link rule."""
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from conftest import API, VISITOR, Auth, Brokerage, MagicLink, database, digest, stored_links

SESSION_ID = "550e8400-e29b-41d4-a716-446655440000"
LINK_SENT = {"success": True, "message": "If that address can receive email, a sign-in link is on its way."}


def test_sends_a_link_by_email(auth, inbox):
    response = auth.request_link()

    assert response.status_code == 202
    assert response.json == LINK_SENT
    [message] = inbox.to(VISITOR)
    assert message["Subject"] == "Your sign-in link for favsync"
    assert message["From"] == "favsync@test.example"
    assert "expire in 15 minutes" in inbox.text_for(VISITOR)
    assert len(inbox.code_for(VISITOR)) == 9  # K7QM-3XPD
    link = inbox.link_for(VISITOR)
    assert link in message.get_body(("html",)).get_content()
    assert urlsplit(link).path.startswith(f"{API}/verify/")


def test_stores_only_a_digest_of_the_secret(auth, inbox, app):
    auth.request_link()
    secret = inbox.secret_for(VISITOR)

    [link] = stored_links(app)
    assert link.token == digest(secret)
    assert secret not in (link.token, link.email, link.session_id)
    assert (link.expires_at - link.created_at).total_seconds() == 15 * 60


def test_a_local_part_of_64_characters_is_fine(auth, inbox):
    address = "a" * 64 + "@example.com"

    assert auth.request_link(address).status_code == 202
    assert len(inbox.to(address)) == 1


def test_normalises_the_email(auth, inbox, app):
    assert auth.request_link("  Visitor@Example.COM ").status_code == 202

    assert len(inbox.to(VISITOR)) == 1
    assert stored_links(app)[0].email == VISITOR


def test_answers_alike_for_known_and_unknown_emails(auth):
    auth.login("known@example.com")

    known = auth.request_link("known@example.com")
    unknown = auth.request_link("stranger@example.com")

    assert (known.status_code, known.json) == (unknown.status_code, unknown.json) == (202, LINK_SENT)


def test_keeps_the_anonymous_session_id(auth, app):
    auth.request_link(headers={"X-Session-ID": SESSION_ID.upper()})

    assert stored_links(app)[0].session_id == SESSION_ID


@pytest.mark.parametrize(
    "session_id", ["", "abc", SESSION_ID[:-1], SESSION_ID + "0", "{" + SESSION_ID[1:-1] + "}",
                   SESSION_ID.replace("-", ""), "550e8400-e29b-41d4-a716-44665544000g"],
)
def test_rejects_a_malformed_session_id(auth, inbox, app, session_id):
    response = auth.request_link(headers={"X-Session-ID": session_id})

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == ["header", "X-Session-ID"]
    assert inbox.messages == [] and stored_links(app) == []


@pytest.mark.parametrize(
    ("body", "type_"),
    [
        ({}, "missing"),
        ({"email": None}, "missing"),
        ({"email": 42}, "string_type"),
        ({"email": ["a@example.com"]}, "string_type"),
        ({"email": ""}, "value_error"),
        ({"email": "not-an-email"}, "value_error"),
        ({"email": "a@b"}, "value_error"),
        ({"email": "two@@example.com"}, "value_error"),
        ({"email": "a" * 64 + "@" + "b" * 186 + ".com"}, "string_too_long"),
        ({"email": "a" * 65 + "@example.com"}, "value_error"),  # RFC 5321: 64 at most
        ({"email": "a" * 71 + "@example.com"}, "value_error"),
    ],
)
def test_rejects_an_invalid_email(client, inbox, app, body, type_):
    response = client.post(f"{API}/magic-link", json=body)

    assert response.status_code == 400
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["loc"] == ["body", "email"]
    assert error["details"][0]["type"] == type_
    assert inbox.messages == [] and stored_links(app) == []


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("{not json", "application/json"),
        ("[1, 2]", "application/json"),
        ('"visitor@example.com"', "application/json"),
        ("null", "application/json"),
        ('{"email": "visitor@example.com"}', "text/plain"),
        ("email=visitor@example.com", "application/x-www-form-urlencoded"),
        ("", None),
    ],
)
def test_rejects_a_body_that_is_not_a_json_object(client, inbox, data, content_type):
    response = client.post(f"{API}/magic-link", data=data, content_type=content_type)

    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_json"
    assert inbox.messages == []


def test_rejects_a_body_that_is_too_large(client, inbox):
    response = client.post(f"{API}/magic-link", json={"email": "a@example.com", "pad": "x" * 70_000})

    assert response.status_code == 413
    assert response.json["success"] is False
    assert response.json["error"]["code"] == "request_entity_too_large"


def test_refuses_a_fourth_pending_link(auth, inbox, app):
    for _ in range(3):
        assert auth.request_link().status_code == 202

    response = auth.request_link()

    assert response.status_code == 429
    assert response.json["error"]["code"] == "too_many_pending_links"
    assert 890 <= int(response.headers["Retry-After"]) <= 900
    assert len(inbox.to(VISITOR)) == 3
    assert len(stored_links(app)) == 3


@pytest.fixture
def three_pending(auth):
    """The visitor has asked for the most links that may be pending at once."""
    for _ in range(3):
        auth.request_link()


def test_pending_limit_is_per_email(auth, three_pending):
    assert auth.request_link("other@example.com").status_code == 202


def test_a_used_link_frees_its_slot(auth, inbox, three_pending):
    auth.follow(inbox.link_for(VISITOR))

    assert auth.request_link().status_code == 202


def test_an_expired_link_frees_its_slot(auth, app, three_pending):
    with database(app) as session:
        oldest = session.scalars(sa.select(MagicLink).order_by(MagicLink.id)).first()
        oldest.expires_at = oldest.created_at  # expired long ago, as far as the rule cares

    assert auth.request_link().status_code == 202


def test_retry_after_counts_down_to_the_oldest_pending_link(auth, app, three_pending):
    with database(app) as session:
        for link in session.scalars(sa.select(MagicLink)):
            link.expires_at = link.expires_at - timedelta(minutes=10)

    response = auth.request_link()

    assert response.status_code == 429
    assert 290 <= int(response.headers["Retry-After"]) <= 300


def test_uses_the_configured_link_template(make_app, inbox):
    app = make_app(FAVSYNC_MAGIC_LINK_URL="https://homes.example/favorites/login?token={token}")
    Auth(app.test_client(), inbox).request_link("v@example.com")

    assert "https://homes.example/favorites/login?token=" in inbox.text_for("v@example.com")


def test_the_requests_host_chooses_the_brokerage(auth, inbox, app):
    with database(app) as session:
        session.add(Brokerage(name="Lakeside Realty", domain="lakeside.example"))

    auth.request_link(VISITOR, headers={"Host": "lakeside.example:8443"})
    auth.request_link("other@example.com", headers={"Host": "unknown.example"})

    assert inbox.to(VISITOR)[0]["Subject"] == "Your sign-in link for Lakeside Realty"
    assert inbox.to("other@example.com")[0]["Subject"] == "Your sign-in link for favsync"
    assert [link.brokerage_id for link in stored_links(app)] == [2, 1]


@pytest.mark.parametrize(
    ("address", "stored"),
    [("visitor@Bücher.example", "visitor@xn--bcher-kva.example"), ("vïsitor@example.com", None)],
)
def test_international_addresses(auth, app, address, stored):
    response = auth.request_link(address)

    if stored is None:  # an SMTPUTF8 local part: many servers would not deliver it
        assert response.status_code == 400
    else:
        assert response.status_code == 202
        assert stored_links(app)[0].email == stored

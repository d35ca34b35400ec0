"""A message token signs its client in: within its lifetime, on its brokerage's host, until log out everywhere."""
from datetime import datetime, timedelta, timezone

import jwt
import pytest
import sqlalchemy as sa

from favsync import client_verified

from conftest import (
    API, VISITOR, Client, Message, OutboxMessage, Server, api_key_for, bearer, database, message_tokens_in, rows,
)

SESSION_ID = "550e8400-e29b-41d4-a716-446655440000"


@pytest.fixture
def visitor(auth, client):
    """A signed-in visitor with two favourites."""
    login = auth.login()
    client.post(f"{API}/sync", json={"favorites": ["C9231328", "98970014"]},
                headers=bearer(login["auth_token"]))
    return login


@pytest.fixture
def token(server, visitor, inbox) -> str:
    """The token in the links of a message the visitor received."""
    agent = server.add_agent()
    server.send(agent, to=visitor["client_id"], links=["https://homes.example/listings/C9231328"])
    return message_tokens_in(inbox.to(VISITOR, 2)[-1])[0]


def clicks(app) -> tuple:
    """(clicks, first click, last click, session id) of the only message."""
    [message] = rows(app, sa.select(Message))
    return message.clicks, message.first_clicked_at, message.last_clicked_at, message.session_id


def test_post_verify_with_a_message_token_signs_the_client_in(client, token, visitor, config):
    response = client.post(f"{API}/verify", json={"token": token})

    assert response.status_code == 200
    body = response.json
    assert set(body) == {"success", "client_id", "auth_token", "favorites", "email", "version",
                         "same_browser"}
    assert body["client_id"] == visitor["client_id"]
    assert body["email"] == VISITOR
    assert body["favorites"] == ["C9231328", "98970014"]
    assert jwt.decode(body["auth_token"], config["FAVSYNC_SECRET_KEY"], algorithms=["HS256"])["client_id"] \
        == visitor["client_id"]
    assert "favsync_refresh=" in response.headers["Set-Cookie"]
    assert client.get(API, headers=bearer(body["auth_token"])).json["favorites"] == body["favorites"]


def test_get_verify_and_seed_002s_code_field_take_a_message_token(client, token):
    assert client.get(f"{API}/verify/{token}").status_code == 200
    assert client.post(f"{API}/verify", json={"code": token}).status_code == 200


def test_a_token_signs_in_any_number_of_times_and_each_click_is_recorded(client, token, app, server):
    first = client.post(f"{API}/verify", json={"token": token}, headers={"X-Session-ID": SESSION_ID})
    count, first_click, last_click, session_id = clicks(app)
    second = client.get(f"{API}/verify/{token.upper()}")

    assert first.status_code == second.status_code == 200
    assert (count, session_id) == (1, SESSION_ID)
    assert first_click == last_click
    count, first_again, last_click, session_id = clicks(app)
    assert count == 2
    assert first_again == first_click < last_click
    assert session_id == SESSION_ID  # the latest one that came with a session id
    assert server.lookup(token).json["messages"][0]["delivery"]["status"] == "clicked"


def test_the_anonymous_session_is_linked_as_for_a_magic_link(client, token, app, visitor):
    received = []

    def on_verified(sender, **extra):
        received.append(extra)

    with client_verified.connected_to(on_verified, app):
        client.post(f"{API}/verify", json={"token": token}, headers={"X-Session-ID": SESSION_ID})

    assert received == [{"session_id": SESSION_ID, "client_id": visitor["client_id"], "brokerage_id": 1,
                         "email": VISITOR, "created": False}]


def test_head_never_signs_in(client, token, app):
    assert client.head(f"{API}/verify/{token}").status_code == 204
    assert clicks(app)[0] == 0
    assert client.head(f"{API}/verify/not-a-token").status_code == 400


def expire(app, age: timedelta) -> None:
    """Move the clock: the message was sent `age` ago."""
    with database(app) as session:
        session.execute(sa.update(Message).values(sent_at=datetime.now(timezone.utc) - age))


def test_a_token_works_for_fourteen_days_after_sending(client, token, app):
    expire(app, timedelta(days=13, hours=23))
    assert client.post(f"{API}/verify", json={"token": token}).status_code == 200

    expire(app, timedelta(days=14, seconds=1))
    response = client.post(f"{API}/verify", json={"token": token})

    assert response.status_code == 410
    assert response.json["error"]["code"] == "token_expired"


def test_a_token_outlives_its_purged_email(client, token, app, server):
    with database(app) as session:  # `favsync purge` deletes delivered emails after a week
        session.execute(sa.update(Message).values(outbox_uid=None))
        session.execute(sa.delete(OutboxMessage))
    expire(app, timedelta(days=10))

    assert client.post(f"{API}/verify", json={"token": token}).status_code == 200
    assert server.lookup(token).json["messages"][0]["delivery"]["sentDateTime"] is not None


def test_the_lifetime_is_configurable_and_zero_turns_message_login_off(make_app, inbox):
    app = make_app(FAVSYNC_MESSAGE_TOKEN_TTL=0)
    client = app.test_client()
    server = Server(client, api_key_for(app))
    token = server.send(server.add_agent()).json["messages"][0]["token"]
    inbox.to(VISITOR)

    response = client.post(f"{API}/verify", json={"token": token})

    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_token"


def test_log_out_everywhere_ends_tokens_sent_before_it(client, token, visitor, server, inbox):
    with_token = client.post(f"{API}/verify", json={"token": token}).json["auth_token"]
    client.post(f"{API}/logout", json={"all": True}, headers=bearer(with_token))

    response = client.post(f"{API}/verify", json={"token": token})

    assert response.status_code == 410
    assert client.get(API, headers=bearer(with_token)).status_code == 401


def test_a_message_sent_after_log_out_everywhere_signs_in(client, visitor, server, app):
    client.post(f"{API}/logout", json={"all": True}, headers=bearer(visitor["auth_token"]))
    with database(app) as session:  # the log-out was a minute ago
        session.execute(sa.update(Client).values(tokens_valid_after=Client.tokens_valid_after - 60))
    token = server.send(server.add_agent(), to=visitor["client_id"]).json["messages"][0]["token"]

    assert client.post(f"{API}/verify", json={"token": token}).status_code == 200


def test_a_token_never_signs_in_on_another_brokerages_host(client, token, runner):
    runner.invoke(args=["favsync", "add-brokerage", "--name", "Lakeside Realty", "--domain", "lakeside.example"])

    elsewhere = client.post(f"{API}/verify", json={"token": token}, headers={"Host": "lakeside.example"})
    at_home = client.post(f"{API}/verify", json={"token": token}, headers={"Host": "localhost"})

    assert elsewhere.status_code == 400
    assert elsewhere.json["error"]["code"] == "invalid_token"
    assert at_home.status_code == 200


def test_a_scheduled_message_signs_in_only_once_sent(server, client, visitor):
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    body = {"sender": "agent", "agentId": server.add_agent(), "clientId": visitor["client_id"],
            "content": {"message": "Later"}, "delivery": {"scheduleDateTime": later}}
    token = server.post("/messages", body).json["messages"][0]["token"]

    assert client.post(f"{API}/verify", json={"token": token}).status_code == 400


def test_failed_attempts_are_limited_per_ip(make_app, inbox):
    app = make_app(FAVSYNC_RATELIMIT_MESSAGE_TOKEN_FAILURES_PER_IP="3 per hour")
    client = app.test_client()
    server = Server(client, api_key_for(app))
    token = server.send(server.add_agent()).json["messages"][0]["token"]
    inbox.to(VISITOR)
    unknown = "00000000-0000-4000-8000-000000000000"

    answers = [client.post(f"{API}/verify", json={"token": unknown}).status_code for _ in range(4)]
    blocked = client.post(f"{API}/verify", json={"token": token})
    elsewhere = client.post(f"{API}/verify", json={"token": token}, environ_base={"REMOTE_ADDR": "10.0.0.9"})

    assert answers == [400, 400, 400, 429]  # three failures, then no more tries
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers
    assert elsewhere.status_code == 200

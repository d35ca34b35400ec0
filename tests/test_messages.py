"""Agent messages (seed 001): API keys, agents, sending, the email, looking a token up, cancelling."""
import hashlib
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from conftest import (
    API, MESSAGES_API, VISITOR, Agent, ApiKey, Client, Inbox, Message, OutboxMessage, Server, api_key_for,
    auth_token_for, bearer, database, free_port, message_tokens_in, rows,
)

SEED_MESSAGE_KEYS = {"messageId", "agentId", "sender", "source", "clientId", "token", "content", "delivery"}
SEED_CONTENT_KEYS = {"listings", "searches", "message", "subject", "links", "pictures"}
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def agent(server) -> int:
    return server.add_agent()


@pytest.fixture
def app(make_app):
    return make_app(FAVSYNC_LISTING_URL="https://homes.example/listings/{listing_id}")


def client_id_of(app, address: str = VISITOR) -> int:
    return rows(app, sa.select(Client.id).where(Client.email == address))[0]


# --- sending -------------------------------------------------------------


def test_a_sent_message_answers_in_the_seeds_shape(server, agent, app):
    auth_token_for(app, VISITOR)

    response = server.send(agent, to=client_id_of(app), subject="A listing for you",
                           links=["https://homes.example/listings/C9231328"], listings=["C9231328"],
                           searches=[107167], pictures=["https://img.homes.example/1.jpg"])

    assert response.status_code == 202
    [message] = response.json["messages"]
    assert set(message) == SEED_MESSAGE_KEYS
    assert set(message["content"]) == SEED_CONTENT_KEYS
    assert message["agentId"] == agent
    assert message["clientId"] == client_id_of(app)
    assert (message["sender"], message["source"]) == ("agent", "api")
    assert message["content"] == {
        "listings": ["C9231328"], "searches": [107167], "message": "Here's a listing you might like.",
        "subject": "A listing for you", "links": ["https://homes.example/listings/C9231328"],
        "pictures": ["https://img.homes.example/1.jpg"],
    }
    assert message["delivery"] == {"scheduleDateTime": None, "sentDateTime": None, "status": "queued"}
    assert uuid.UUID(message["token"]).version == 4


def test_the_email_carries_the_token_in_every_link_and_listing(server, agent, inbox):
    response = server.send(
        agent, subject="A listing for you", message="Hi <b>there</b>, have a look.",
        links=["https://homes.example/search?city=Toronto&token=old#map", "https://homes.example/about"],
        listings=["C9231328"], pictures=["https://img.homes.example/1.jpg"],
    )
    token = response.json["messages"][0]["token"]

    [email] = inbox.to(VISITOR)
    text = Inbox.text_of(email)
    assert email["Subject"] == "A listing for you"
    assert email["Reply-To"] == "Jane Doe <jane@homes.example>"
    assert "List-Unsubscribe" not in email  # agent messages are not list mail
    assert "Hi <b>there</b>, have a look." in text
    assert f"https://homes.example/search?city=Toronto&token={token}#map" in text
    assert f"https://homes.example/about?token={token}" in text
    assert f"https://homes.example/listings/C9231328?token={token}" in text
    assert "https://img.homes.example/1.jpg\r\n" in text  # no token on pictures
    assert message_tokens_in(email) == [token] * 3
    html = email.get_body(("html",)).get_content()
    assert "Hi &lt;b&gt;there&lt;/b&gt;, have a look." in html
    assert '<img src="https://img.homes.example/1.jpg"' in html


def test_without_a_subject_the_email_names_the_agent(server, agent, inbox):
    server.send(agent)

    assert inbox.to(VISITOR)[0]["Subject"] == "A message from Jane Doe"


def test_an_email_address_names_a_new_client(server, agent, app):
    response = server.send(agent, to="New.Lead@Example.com")

    assert response.status_code == 202
    assert response.json["messages"][0]["clientId"] == client_id_of(app, "new.lead@example.com")


def test_the_token_is_stored_only_as_its_digest(server, agent, app):
    token = server.send(agent).json["messages"][0]["token"]

    assert rows(app, sa.select(Message.token)) == [hashlib.sha256(token.encode()).hexdigest()]


def test_every_message_has_its_own_token(server, agent):
    tokens = {server.send(agent).json["messages"][0]["token"] for _ in range(3)}

    assert len(tokens) == 3


def test_the_first_agent_to_write_becomes_the_clients_agent(server, agent, app):
    second = server.add_agent("John Roe", "john@homes.example")
    server.send(agent)
    server.send(second)

    assert rows(app, sa.select(Client.agent_id)) == [agent]


@pytest.mark.parametrize(
    "change",
    [
        {"sender": "client"},
        {"sender": None},
        {"agentId": "1"},
        {"agentId": 0},
        {"clientId": 1},  # with the email: one or the other
        {"email": None},
        {"source": "sms"},
        {"content": {"subject": "no message"}},
        {"content": {"message": ""}},
        {"content": {"message": "hi", "subject": "s" * 101}},
        {"content": {"message": "hi", "searches": ["107167"]}},
        {"content": {"message": "hi", "searches": [True]}},
        {"content": {"message": "hi", "links": ["javascript:alert(1)"]}},
        {"content": {"message": "hi", "listings": ["bad id"]}},
        {"delivery": {"scheduleDateTime": "tomorrow"}},
        {"delivery": {"scheduleDateTime": "2026-12-01"}},
        {"delivery": {"scheduleDateTime": 1796083200}},
    ],
)
def test_an_invalid_message_is_refused_and_nothing_is_sent(server, agent, app, inbox, change):
    body = {"sender": "agent", "agentId": agent, "email": VISITOR, "content": {"message": "hi"}, **change}
    body = {key: value for key, value in body.items() if value is not None}

    response = server.post("/messages", body)

    assert response.status_code == 400
    assert response.json["error"]["code"] == "validation_error"
    assert rows(app, sa.select(Message.id)) == []
    assert inbox.messages == []


def test_an_unknown_agent_or_client_is_404(server, agent):
    assert server.send(agent + 1).status_code == 404
    assert server.send(agent, to=12345).status_code == 404


# --- looking messages up -------------------------------------------------


def test_a_token_looks_up_its_message_in_the_seeds_shape(server, agent, inbox):
    sent = server.send(agent, links=["https://homes.example/listings/C9231328"]).json["messages"][0]
    [token] = message_tokens_in(inbox.to(VISITOR)[0])[:1]

    response = server.lookup(token)

    assert response.status_code == 200
    assert set(response.json) == {"page", "numPages", "pageSize", "count", "messages"}
    assert (response.json["page"], response.json["numPages"], response.json["pageSize"],
            response.json["count"]) == (1, 1, 100, 1)
    [found] = response.json["messages"]
    assert set(found) == SEED_MESSAGE_KEYS
    assert found["token"] == token
    assert {key: found[key] for key in ("messageId", "agentId", "clientId", "content")} == {
        key: sent[key] for key in ("messageId", "agentId", "clientId", "content")}
    assert found["delivery"]["status"] == "sent"
    assert found["delivery"]["scheduleDateTime"] is None
    assert TIME.match(found["delivery"]["sentDateTime"])


def test_an_upper_case_token_finds_its_message(server, agent):
    token = server.send(agent).json["messages"][0]["token"]

    assert server.lookup(token.upper()).json["count"] == 1


def test_an_unknown_token_finds_nothing(server, agent):
    server.send(agent)

    response = server.lookup(str(uuid.uuid4()))

    assert response.status_code == 200
    assert response.json["messages"] == []
    assert response.json["count"] == 0


@pytest.mark.parametrize("token", ["not-a-uuid", "550e8400e29b41d4a716446655440000", "b11238d2-8a22-4d7e-87cc-f73car456ee22"])
def test_a_token_that_is_not_a_uuid_is_400(server, token):
    response = server.lookup(token)

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == ["query", "token"]


def test_messages_are_listed_newest_first_a_page_at_a_time(server, agent):
    ids = [server.send(agent, to=f"lead{i}@example.com").json["messages"][0]["messageId"] for i in range(3)]

    first = server.get("/messages", query_string={"resultsPerPage": 2}).json
    second = server.get("/messages", query_string={"resultsPerPage": 2, "pageNum": 2}).json

    assert [m["messageId"] for m in first["messages"]] == [ids[2], ids[1]]
    assert [m["messageId"] for m in second["messages"]] == [ids[0]]
    assert (first["page"], first["numPages"], first["pageSize"], first["count"]) == (1, 2, 2, 3)
    assert second["page"] == 2
    assert all("token" not in message for message in first["messages"])  # only digests are kept


def test_messages_are_filtered_like_repliers_does(server, agent, app):
    other = server.add_agent("John Roe", "john@homes.example")
    first = server.send(agent, to="a@example.com").json["messages"][0]
    second = server.send(other, to="b@example.com").json["messages"][0]
    later = datetime.now(timezone.utc) + timedelta(hours=1)

    def found(**query):
        response = server.get("/messages", query_string=query)
        assert response.status_code == 200, response.json
        return [message["messageId"] for message in response.json["messages"]]

    assert found(agentId=other) == [second["messageId"]]
    assert found(clientId=first["clientId"]) == [first["messageId"]]
    assert found(messageId=first["messageId"]) == [first["messageId"]]
    assert found(sender="agent") == [second["messageId"], first["messageId"]]
    assert found(sender="client") == []
    assert found(status="sent") == [second["messageId"], first["messageId"]]
    assert found(status="queued") == []
    assert found(startTime=later.isoformat()) == []
    assert found(endTime=later.isoformat()) == [second["messageId"], first["messageId"]]


@pytest.mark.parametrize(
    "query",
    [{"pageNum": 0}, {"pageNum": "x"}, {"resultsPerPage": 101}, {"resultsPerPage": "1.5"},
     {"agentId": "-1"}, {"status": "read"}, {"startTime": "yesterday"}, {"sender": "bot"}],
)
def test_a_bad_filter_is_400(server, query):
    response = server.get("/messages", query_string=query)

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"][0] == "query"


def test_one_message_by_id(server, agent):
    sent = server.send(agent).json["messages"][0]

    response = server.get(f"/messages/{sent['messageId']}")

    assert response.status_code == 200
    assert response.json == {key: value for key, value in sent.items() if key != "token"} | {
        "delivery": response.json["delivery"]}
    assert response.json["delivery"]["status"] == "sent"
    assert server.get("/messages/999").status_code == 404
    assert server.get("/messages/abc").status_code == 400


def test_a_client_reads_their_own_messages_without_tokens(server, agent, client, auth):
    login = auth.login()
    server.send(agent, to=login["client_id"])
    server.send(agent, to="someone.else@example.com")

    response = client.get(f"{MESSAGES_API}/messages", headers=bearer(login["auth_token"]))

    assert response.status_code == 200
    [message] = response.json["messages"]
    assert message["clientId"] == login["client_id"]
    assert "token" not in message


def test_a_message_whose_email_failed_says_so_and_signs_no_one_in(make_app):
    # No mail server listens there, and one attempt is all it gets.
    app = make_app(FAVSYNC_MAIL_PORT=free_port(), FAVSYNC_DELIVERY_MAX_ATTEMPTS=1)
    server = Server(app.test_client(), api_key_for(app))
    token = server.send(server.add_agent()).json["messages"][0]["token"]

    [message] = server.lookup(token).json["messages"]

    assert message["delivery"] == {"scheduleDateTime": None, "sentDateTime": None, "status": "failed"}
    assert app.test_client().post(f"{API}/verify", json={"token": token}).status_code == 400


# --- scheduling and cancelling -------------------------------------------


def in_an_hour() -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(timespec="milliseconds")


def test_a_scheduled_message_waits_and_can_be_cancelled(server, agent, app, inbox):
    body = {"sender": "agent", "agentId": agent, "email": VISITOR, "content": {"message": "Later"},
            "delivery": {"scheduleDateTime": in_an_hour()}}

    sent = server.post("/messages", body).json["messages"][0]
    looked_up = server.lookup(sent["token"]).json["messages"][0]
    cancelled = server.delete(f"/messages/{sent['messageId']}")

    assert sent["delivery"]["status"] == "scheduled"
    assert TIME.match(sent["delivery"]["scheduleDateTime"])
    assert looked_up["delivery"]["status"] == "scheduled"
    assert inbox.messages == []
    assert cancelled.status_code == 204
    assert server.get(f"/messages/{sent['messageId']}").status_code == 404
    assert rows(app, sa.select(OutboxMessage.id)) == []


def test_a_scheduled_message_goes_when_its_time_comes(server, agent, app, inbox, runner):
    body = {"sender": "agent", "agentId": agent, "email": VISITOR, "content": {"message": "Later"},
            "delivery": {"scheduleDateTime": in_an_hour()}}
    sent = server.post("/messages", body).json["messages"][0]
    with database(app) as session:  # the hour passes
        session.execute(sa.update(OutboxMessage).values(next_attempt_at=datetime.now(timezone.utc)))

    assert runner.invoke(args=["favsync", "deliver"]).exit_code == 0

    assert Inbox.text_of(inbox.to(VISITOR)[0]).startswith("Later")
    assert server.get(f"/messages/{sent['messageId']}").json["delivery"]["status"] == "sent"


def test_a_sent_message_cannot_be_cancelled(server, agent):
    sent = server.send(agent).json["messages"][0]

    response = server.delete(f"/messages/{sent['messageId']}")

    assert response.status_code == 403
    assert response.json["error"]["code"] == "already_sent"
    assert server.get(f"/messages/{sent['messageId']}").status_code == 200


# --- agents --------------------------------------------------------------


def test_adding_an_agent(server, app):
    response = server.post("/agents", {"name": "Jane Doe", "email": "Jane@Homes.example"})

    assert response.status_code == 201
    assert response.json == {"agentId": response.json["agentId"], "name": "Jane Doe",
                             "email": "jane@homes.example"}


@pytest.mark.parametrize("body", [{"name": "Jane"}, {"name": "", "email": "j@h.example"},
                                  {"name": "Jane\r\nBcc: x@evil.example", "email": "j@h.example"},
                                  {"name": "Jane", "email": "not an email"}])
def test_an_invalid_agent_is_refused(server, body):
    assert server.post("/agents", body).status_code == 400


# --- API keys ------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "fsk_short", "fsk_" + "a" * 43, "Bearer x"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/messages"), ("POST", "/messages"), ("GET", "/messages/1"), ("DELETE", "/messages/1"),
     ("POST", "/agents"), ("POST", "/listings/C9231328/events")],
)
def test_a_missing_or_unknown_key_is_401(client, method, path, key):
    headers = {} if key is None else {"X-API-Key": key}

    response = client.open(f"{MESSAGES_API}{path}", method=method, headers=headers, json={})

    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_api_key"


def test_a_revoked_key_stops_working(server, runner):
    assert server.get("/messages").status_code == 200

    result = runner.invoke(args=["favsync", "api-key", "revoke", "1"])

    assert result.exit_code == 0, result.output
    assert server.get("/messages").status_code == 401
    assert runner.invoke(args=["favsync", "api-key", "revoke", "1"]).exit_code != 0


def test_api_key_create_prints_the_key_alone_and_keeps_its_digest(runner, app, client):
    runner.invoke(args=["favsync", "add-brokerage", "--name", "Lakeside Realty", "--domain", "lakeside.example"])

    result = runner.invoke(args=["favsync", "api-key", "create", "--brokerage", "Lakeside Realty",
                                 "--label", "crm"])

    key = result.output.strip()
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"fsk_[A-Za-z0-9_-]{43}", key)
    assert rows(app, sa.select(ApiKey.digest)) == [hashlib.sha256(key.encode()).hexdigest()]
    assert rows(app, sa.select(ApiKey.brokerage_id)) == [2]
    assert Server(client, key).get("/messages").status_code == 200
    listed = runner.invoke(args=["favsync", "api-key", "list"]).output
    assert "Lakeside Realty\tcrm" in listed and key not in listed


def test_api_key_create_needs_a_known_brokerage(runner):
    result = runner.invoke(args=["favsync", "api-key", "create", "--brokerage", "Nowhere"])

    assert result.exit_code != 0
    assert "no brokerage" in result.output


def test_agent_add_prints_the_id_alone(runner, app):
    first = runner.invoke(args=["favsync", "agent", "add", "--brokerage", "1", "--name", "Jane Doe",
                                "--email", "jane@homes.example"])
    second = runner.invoke(args=["favsync", "agent", "add", "--brokerage", "favsync", "--name", "Desk",
                                 "--email", "desk@homes.example", "--default"])
    third = runner.invoke(args=["favsync", "agent", "add", "--brokerage", "1", "--name", "New desk",
                                "--email", "desk2@homes.example", "--default"])

    assert [first.output, second.output, third.output] == ["1\n", "2\n", "3\n"]
    assert rows(app, sa.select(Agent.id).where(Agent.is_default)) == [3]
    bad = runner.invoke(args=["favsync", "agent", "add", "--brokerage", "1", "--name", "X", "--email", "nope"])
    assert bad.exit_code != 0


# --- one brokerage never sees another's ----------------------------------


@pytest.fixture
def lakeside(app, client, runner) -> Server:
    """A second brokerage's server, with its own key and agent."""
    runner.invoke(args=["favsync", "add-brokerage", "--name", "Lakeside Realty", "--domain", "lakeside.example"])
    return Server(client, api_key_for(app, brokerage_id=2))


def test_a_key_of_one_brokerage_cannot_touch_another(server, agent, lakeside, app):
    sent = server.send(agent).json["messages"][0]
    theirs = lakeside.add_agent("Lake Agent", "agent@lakeside.example")

    assert lakeside.get(f"/messages/{sent['messageId']}").status_code == 404
    assert lakeside.delete(f"/messages/{sent['messageId']}").status_code == 404
    assert lakeside.lookup(sent["token"]).json["messages"] == []
    assert lakeside.get("/messages").json["messages"] == []
    assert lakeside.send(agent, to="x@example.com").status_code == 404  # not their agent
    assert lakeside.send(theirs, to=sent["clientId"]).status_code == 404  # not their client
    assert server.send(theirs).status_code == 404
    assert server.get("/messages", query_string={"agentId": theirs}).json["messages"] == []


@pytest.mark.parametrize("query", ["startTime=0001-01-01T00:00:00%2B01:00",
                                   "endTime=9999-12-31T23:59:59-01:00"])
def test_a_time_with_no_utc_equivalent_is_a_400_not_a_500(client, app, query):
    response = client.get(f"/api/v1/messages?{query}", headers={"X-API-Key": api_key_for(app)})

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"][0] == "query"


def test_a_subject_is_one_line(client, app):
    response = client.post("/api/v1/messages", headers={"X-API-Key": api_key_for(app)}, json={
        "sender": "agent", "agentId": 1, "email": "carol@example.com",
        "content": {"message": "hi", "subject": "Hello\nBcc: evil@example.com"}})

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == ["body", "content", "subject"]


def test_message_lookups_are_never_stored(client, app):
    response = client.get("/api/v1/messages", headers={"X-API-Key": api_key_for(app)})

    assert response.headers["Cache-Control"] == "no-store"

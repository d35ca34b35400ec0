"""Listing alerts: a price or status change reaches the clients who favourited the listing, once;
one click on the alert signs them in; one click (RFC 8058) stops them."""
import logging
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from conftest import (
    API, MESSAGES_API, VISITOR, Client, Favorite, Inbox, ListingEvent, Message, OutboxMessage, Server,
    api_key_for, auth_token_for, bearer, count_statements, database, message_tokens_in, rows,
)

LISTING = "C9231328"
LISTING_PAGE = f"https://homes.example/listings/{LISTING}"
PRICE_CHANGE = {
    "eventId": "mls-123-2026-11-25",
    "type": "price_change",
    "previous": {"listPrice": 500000, "status": "A"},
    "current": {"listPrice": 475000, "status": "A"},
    "url": LISTING_PAGE,
}


@pytest.fixture
def default_agent(runner) -> int:
    """The brokerage's default agent, who sends alerts to clients without an agent."""
    result = runner.invoke(args=["favsync", "agent", "add", "--brokerage", "1", "--name", "Homes Desk",
                                 "--email", "desk@homes.example", "--default"])
    assert result.exit_code == 0, result.output
    return int(result.output)


def favourite(app, address: str, *listing_ids: str, brokerage_id: int = 1,
              host: str = "localhost") -> str:
    """Sign `address` up and give it favourites (on its brokerage's `host`); its auth token."""
    token = auth_token_for(app, address, brokerage_id)
    client = app.test_client()
    synced = client.post(f"{API}/sync", json={"favorites": list(listing_ids)}, headers=bearer(token),
                         base_url=f"http://{host}")
    assert synced.status_code == 200
    return token


def post_event(server, event=PRICE_CHANGE, listing=LISTING):
    return server.post(f"/listings/{listing}/events", event)


# --- done when: the alert, its link, the lookup, the login ---------------


def test_a_price_change_reaches_favouriters_and_its_link_signs_them_in(
    app, client, server, inbox, default_agent
):
    favourite(app, "ann@example.com", LISTING, "98970014")
    favourite(app, "bob@example.com", LISTING)
    favourite(app, "cat@example.com", "98970014")  # another listing: no alert
    unsubscribed = favourite(app, "dan@example.com", LISTING)
    client.put(f"{API}/preferences", json={"alerts": False}, headers=bearer(unsubscribed))

    response = post_event(server)

    assert response.status_code == 202
    assert response.json == {"eventId": "mls-123-2026-11-25", "queued": 2}
    assert [m["To"] for m in inbox.messages] == ["ann@example.com", "bob@example.com"]
    [alert] = inbox.to("ann@example.com")
    assert alert["Subject"] == "Price reduced from $500,000 to $475,000"
    assert alert["Reply-To"] == "Homes Desk <desk@homes.example>"
    assert alert["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # (Folded onto its own line: unfolded, it is the URL in angle brackets.)
    assert alert["List-Unsubscribe"].strip().startswith(f"<http://localhost{MESSAGES_API}/messages/unsubscribe/")
    # The visitor follows the link in the email to the brokerage's site...
    [link] = [line for line in Inbox.text_of(alert).splitlines() if line.startswith(LISTING_PAGE)]
    query = urlsplit(link).query
    assert query.startswith("token=")
    token = query.removeprefix("token=")
    # ... whose server looks the token up ...
    lookup = server.lookup(token)
    assert lookup.status_code == 200
    [message] = lookup.json["messages"]
    assert message["token"] == token
    assert message["source"] == "bot"
    assert message["agentId"] == default_agent
    assert message["clientId"] == rows(app, sa.select(Client.id).where(Client.email == "ann@example.com"))[0]
    assert message["content"] == {
        "listings": [LISTING], "searches": [], "subject": "Price reduced from $500,000 to $475,000",
        "message": "Listing C9231328, one of your favourites, was reduced from $500,000 to $475,000.",
        "links": [LISTING_PAGE], "pictures": [],
    }
    assert message["delivery"]["status"] == "sent"
    # ... and whose page signs the visitor in with the token.
    login = client.post(f"{API}/verify", json={"token": token})
    assert login.status_code == 200
    assert login.json["email"] == "ann@example.com"
    assert login.json["favorites"] == [LISTING, "98970014"]


def test_the_same_event_again_sends_nothing(app, server, inbox, default_agent):
    favourite(app, "ann@example.com", LISTING)
    first = post_event(server)
    inbox.clear()

    again = post_event(server)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json == first.json
    assert inbox.messages == []
    assert len(rows(app, sa.select(Message.id))) == 1
    assert rows(app, sa.select(ListingEvent.queued)) == [1]


def test_every_alert_has_its_own_token(app, server, inbox, default_agent):
    for address in ("ann@example.com", "bob@example.com", "cat@example.com"):
        favourite(app, address, LISTING)

    post_event(server)

    tokens = [message_tokens_in(message)[0] for message in inbox.messages]
    assert len(set(tokens)) == 3


@pytest.mark.parametrize(
    ("previous", "current", "subject", "text"),
    [
        ({"listPrice": 475000, "status": "A"}, {"listPrice": 475000, "status": "Sld"}, "Sold",
         "Listing C9231328, one of your favourites, has sold."),
        ({"listPrice": 475000, "status": "U"}, {"listPrice": 475000, "status": "A"}, "Back on the market",
         "Listing C9231328, one of your favourites, is back on the market."),
        ({"listPrice": 475000, "status": "A"}, {"listPrice": 475000, "status": "Ter"}, "Status changed to Ter",
         "Listing C9231328, one of your favourites, changed status from A to Ter."),
    ],
)
def test_status_changes(app, server, inbox, default_agent, previous, current, subject, text):
    favourite(app, VISITOR, LISTING)

    post_event(server, {"eventId": "e1", "type": "status_change", "previous": previous, "current": current})

    [alert] = inbox.to(VISITOR)
    assert alert["Subject"] == subject
    assert Inbox.text_of(alert).startswith(text)


def test_a_price_rise_and_cents(app, server, inbox, default_agent):
    favourite(app, VISITOR, LISTING)

    post_event(server, {**PRICE_CHANGE, "previous": {"listPrice": 499999.5, "status": "A"},
                        "current": {"listPrice": 510000, "status": "A"}})

    assert inbox.to(VISITOR)[0]["Subject"] == "Price changed from $499,999.50 to $510,000"


def test_an_alert_comes_from_the_clients_own_agent(app, server, inbox, default_agent):
    favourite(app, VISITOR, LISTING)
    jane = server.add_agent()
    server.send(jane)
    inbox.clear()

    post_event(server)

    assert inbox.to(VISITOR)[0]["Reply-To"] == "Jane Doe <jane@homes.example>"
    assert server.get("/messages", query_string={"agentId": jane}).json["count"] == 2


def test_without_a_default_agent_an_unassigned_favouriter_is_422(app, server, inbox):
    favourite(app, VISITOR, LISTING)

    response = post_event(server)

    assert response.status_code == 422
    assert response.json["error"]["code"] == "no_default_agent"
    assert rows(app, sa.select(ListingEvent.id)) == []  # a retry after adding one goes through
    assert inbox.messages == []


def test_no_favouriters_queue_nothing(server):
    assert post_event(server).json == {"eventId": PRICE_CHANGE["eventId"], "queued": 0}


@pytest.mark.parametrize(
    "change",
    [{"type": "sold"}, {"eventId": ""}, {"eventId": "has space"}, {"previous": None},
     {"current": {"listPrice": -1, "status": "A"}}, {"current": {"listPrice": "475000", "status": "A"}},
     {"current": {"listPrice": 475000}}, {"url": "ftp://homes.example"}, {"url": None}],
)
def test_an_invalid_event_is_400(server, change):
    event = {key: value for key, value in {**PRICE_CHANGE, **change}.items() if value is not None}
    if change.get("url", "") is None:
        event["url"] = None

    assert post_event(server, event).status_code == 400


def test_an_invalid_listing_id_is_400(server):
    assert post_event(server, listing="bad%20id").status_code == 400


# --- one brokerage's events reach only its own clients -------------------


def test_an_event_reaches_only_the_brokerages_own_clients(app, client, server, inbox, runner, default_agent):
    runner.invoke(args=["favsync", "add-brokerage", "--name", "Lakeside Realty", "--domain", "lakeside.example"])
    runner.invoke(args=["favsync", "agent", "add", "--brokerage", "2", "--name", "Lake Desk",
                        "--email", "desk@lakeside.example", "--default"])
    lakeside = Server(client, api_key_for(app, brokerage_id=2))
    favourite(app, "ann@example.com", LISTING)
    favourite(app, "lee@example.com", LISTING, brokerage_id=2, host="lakeside.example")

    response = post_event(lakeside)
    mine = post_event(server)  # the same event id in another brokerage is another event

    assert response.json["queued"] == mine.json["queued"] == 1
    [lee] = inbox.to("lee@example.com")
    token = message_tokens_in(lee)[0]
    assert server.lookup(token).json["messages"] == []
    assert lakeside.lookup(token).json["count"] == 1
    # Lakeside's token signs in on Lakeside's site, not on the default one.
    assert client.post(f"{API}/verify", json={"token": token}).status_code == 400
    assert client.post(f"{API}/verify", json={"token": token},
                       headers={"Host": "lakeside.example"}).json["email"] == "lee@example.com"


# --- fan-out cost --------------------------------------------------------


def add_favouriters(app, count: int, start: int = 0) -> None:
    """`count` clients of brokerage 1 who favourited LISTING, written straight to the database."""
    with database(app) as session:
        session.execute(sa.insert(Client), [
            {"brokerage_id": 1, "email": f"fan{i}@example.com"} for i in range(start, start + count)
        ])
        session.execute(sa.insert(Favorite).from_select(
            ["client_id", "listing_id"],
            sa.select(Client.id, sa.literal(LISTING)).where(Client.email.like("fan%"),
                                                            Client.id.not_in(sa.select(Favorite.client_id))),
        ))


@pytest.fixture
def queued_only(make_app):
    """An app whose outbox waits for Celery workers that never come, and its server with a
    default agent: the tests count the request's statements, not those of 10,000 deliveries."""
    app = make_app(FAVSYNC_CELERY_BROKER_URL="memory://")
    result = app.test_cli_runner().invoke(args=["favsync", "agent", "add", "--brokerage", "1",
                                                "--name", "Desk", "--email", "desk@homes.example",
                                                "--default"])
    assert result.exit_code == 0, result.output
    return app, Server(app.test_client(), api_key_for(app))


def test_the_fan_out_costs_the_same_statements_for_3_and_30_favouriters(queued_only):
    app, server = queued_only
    add_favouriters(app, 3)
    with count_statements(app) as few:
        assert post_event(server, {**PRICE_CHANGE, "eventId": "e1"}).json["queued"] == 3
    add_favouriters(app, 27, start=3)
    with count_statements(app) as many:
        assert post_event(server, {**PRICE_CHANGE, "eventId": "e2"}).json["queued"] == 30

    inserts = [statement for statement in many if statement.lstrip().upper().startswith("INSERT")]
    assert len(few) == len(many)
    assert len(inserts) == 3  # the outbox rows, the messages, the event


def test_ten_thousand_favouriters_are_queued_in_one_request(queued_only):
    app, server = queued_only
    add_favouriters(app, 3)
    with count_statements(app) as few:
        post_event(server, {**PRICE_CHANGE, "eventId": "e1"})
    add_favouriters(app, 9_997, start=3)

    with count_statements(app) as statements:
        response = post_event(server, {**PRICE_CHANGE, "eventId": "e2"})

    assert response.status_code == 202, response.json
    assert response.json["queued"] == 10_000
    assert len(statements) == len(few)
    assert rows(app, sa.select(sa.func.count()).select_from(Message).where(Message.source == "bot")) == [10_003]
    assert rows(app, sa.select(sa.func.count()).select_from(OutboxMessage)) == [10_003]


# --- stopping alerts -----------------------------------------------------


@pytest.fixture
def unsubscribe_path(app, server, inbox, default_agent) -> str:
    favourite(app, VISITOR, LISTING)
    post_event(server)
    header = inbox.to(VISITOR)[0]["List-Unsubscribe"]
    return urlsplit(header.strip().strip("<>")).path


def alerts_of(app, address: str = VISITOR) -> bool:
    return rows(app, sa.select(Client.alerts).where(Client.email == address))[0]


def test_the_unsubscribe_link_shows_a_page_and_changes_nothing(client, app, unsubscribe_path):
    for method in ("GET", "HEAD"):
        response = client.open(unsubscribe_path, method=method)
        assert response.status_code == 200
        assert response.mimetype == "text/html"

    page = client.get(unsubscribe_path).get_data(as_text=True)
    assert '<form method="post">' in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert alerts_of(app) is True


def test_one_click_unsubscribe_turns_alerts_off_without_credentials(app, unsubscribe_path, server, inbox):
    fresh = app.test_client()  # no cookies, no Authorization

    first = fresh.post(unsubscribe_path, data={"List-Unsubscribe": "One-Click"})
    again = fresh.post(unsubscribe_path, data={"List-Unsubscribe": "One-Click"},
                       content_type="multipart/form-data")

    assert first.status_code == again.status_code == 200
    assert "Listing alerts are off" in first.get_data(as_text=True)
    assert alerts_of(app) is False
    inbox.clear()
    post_event(server, {**PRICE_CHANGE, "eventId": "next"})
    assert inbox.messages == []


@pytest.mark.parametrize(
    "send",
    [
        {},
        {"data": {"List-Unsubscribe": "yes"}},
        {"json": {"List-Unsubscribe": "One-Click"}},
    ],
)
def test_unsubscribe_wants_the_one_click_form(client, app, unsubscribe_path, send):
    response = client.post(unsubscribe_path, **send)

    assert response.status_code == 400
    assert alerts_of(app) is True


@pytest.mark.parametrize("signed", ["MQ.forged", "abc", "Mg.hgj-peccdHMRGZ89k-6XIyLn1uE"])
def test_a_forged_unsubscribe_link_is_400(client, signed):
    for method in ("GET", "POST"):
        response = client.open(f"{MESSAGES_API}/messages/unsubscribe/{signed}", method=method,
                               data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 400


def test_the_request_log_never_holds_an_unsubscribe_link(client, unsubscribe_path, caplog):
    caplog.set_level(logging.INFO, logger="favsync.requests")

    client.post(unsubscribe_path, data={"List-Unsubscribe": "One-Click"})

    [line] = [record.getMessage() for record in caplog.records]
    assert f"POST {MESSAGES_API}/messages/unsubscribe/*** 200" in line
    assert unsubscribe_path.rsplit("/", 1)[1] not in line


def test_a_configured_unsubscribe_url(make_app, inbox, default_agent):
    app = make_app(FAVSYNC_UNSUBSCRIBE_URL="https://homes.example/api/v1/messages/unsubscribe/{token}")
    app.test_cli_runner().invoke(args=["favsync", "agent", "add", "--brokerage", "1", "--name", "Desk",
                                       "--email", "desk@homes.example", "--default"])
    favourite(app, VISITOR, LISTING)

    post_event(Server(app.test_client(), api_key_for(app)))

    assert inbox.to(VISITOR)[0]["List-Unsubscribe"].strip().startswith(
        "<https://homes.example/api/v1/messages/unsubscribe/")


def test_a_client_reads_and_sets_alerts(client, auth):
    headers = auth.headers()

    assert client.get(f"{API}/preferences", headers=headers).json == {"success": True, "alerts": True}
    assert client.put(f"{API}/preferences", json={"alerts": False}, headers=headers).json == {
        "success": True, "alerts": False}
    assert client.get(f"{API}/preferences", headers=headers).json["alerts"] is False
    assert client.put(f"{API}/preferences", json={"alerts": "no"}, headers=headers).status_code == 400
    assert client.get(f"{API}/preferences").status_code == 401

"""Seed 002's login: POST /api/auth/magic-link/verify, field for field, errors in its shape."""
import jwt
import pytest
import sqlalchemy as sa

from favsync import client_verified

from conftest import (
    API, COOKIE, VISITOR, Auth, MagicLink, cookie_value, database, refresh, rows, set_cookie, signalled,
)

SEED_LOGIN = "/api/auth/magic-link/verify"
SESSION_ID = "550e8400-e29b-41d4-a716-446655440000"
LOGIN_FIELDS = {"access_token", "user", "expires_in_minutes", "has_deals", "force_password_change",
                "matomo_visitor_id", "redirect_deal_id"}


@pytest.fixture
def code(auth, inbox) -> str:
    """The code of a sign-in link just emailed to the visitor (the secret in its URL)."""
    auth.request_link(headers={"X-Session-ID": SESSION_ID})
    return inbox.secret_for(VISITOR)


def test_a_seed_002_front_end_logs_in_and_reads_every_field(client, code, config):
    response = client.post(SEED_LOGIN, json={"code": code, "deal_id": "D-1042"})

    assert response.status_code == 200
    body = response.json
    assert set(body) == LOGIN_FIELDS
    client_id = jwt.decode(body["access_token"], options={"verify_signature": False})["client_id"]
    assert body["user"] == {"id": str(client_id), "display_name": "visitor", "email": VISITOR,
                            "avatar_url": None, "provider": "magic_link"}
    assert body["expires_in_minutes"] == 90 * 24 * 60
    assert (body["has_deals"], body["force_password_change"]) == (False, False)
    assert body["matomo_visitor_id"] is None
    assert body["redirect_deal_id"] is None  # no host hook vouched for the deal
    assert response.headers["Cache-Control"] == "no-store"
    assert "refresh" not in response.get_data(as_text=True)
    assert cookie_value(response) not in response.get_data(as_text=True)
    assert "HttpOnly" in set_cookie(response) and f"Path={API};" in set_cookie(response)
    assert client.get(API, headers={"Authorization": f"Bearer {body['access_token']}"}).status_code == 200


def test_the_access_token_is_favsyncs_with_the_seed_000_claims(client, code, config):
    token = client.post(SEED_LOGIN, json={"code": code}).json["access_token"]

    claims = jwt.decode(token, config["FAVSYNC_SECRET_KEY"], algorithms=["HS256"])
    assert claims["type"] == "favorites_auth" and claims["email"] == VISITOR
    assert {"client_id", "brokerage_id", "email", "exp", "iat", "type", "sid"} == set(claims)


def test_expires_in_minutes_follows_the_auth_token_lifetime(make_app, inbox):
    client = make_app(FAVSYNC_AUTH_TOKEN_TTL=900).test_client()
    Auth(client, inbox).request_link()

    response = client.post(SEED_LOGIN, json={"code": inbox.secret_for(VISITOR)})

    assert response.json["expires_in_minutes"] == 15


def test_it_links_the_session_and_tells_the_host_like_favsyncs_verify(client, code, app):
    with signalled(client_verified, app) as received:
        user_id = client.post(SEED_LOGIN, json={"code": code}).json["user"]["id"]

    assert received == [{"session_id": SESSION_ID, "client_id": int(user_id), "brokerage_id": 1,
                         "email": VISITOR, "created": True}]
    [link] = rows(app, sa.select(MagicLink))
    assert (link.session_id, link.client_id) == (SESSION_ID, int(user_id))


def test_its_refresh_cookie_refreshes_at_favsyncs_api(client, code):
    client.post(SEED_LOGIN, json={"code": code})

    assert client.get_cookie(COOKIE, path=API) is not None
    assert refresh(client).status_code == 200


def test_a_code_works_once_and_answers_in_the_seeds_shape(client, code, auth, inbox):
    first = client.post(SEED_LOGIN, json={"code": code})
    again = client.post(SEED_LOGIN, json={"code": code})
    by_link = auth.follow(inbox.link_for(VISITOR))

    assert first.status_code == 200
    assert (again.status_code, again.json) == (
        410, {"detail": "This sign-in link was already used, perhaps in another browser; sign in again here."})
    assert by_link.json["error"]["code"] == "token_used"


@pytest.mark.parametrize("unknown", ["A" * 43, "short", "x" * 500, ""])
def test_an_unknown_code_is_400_detail(client, unknown):
    response = client.post(SEED_LOGIN, json={"code": unknown})

    assert (response.status_code, response.json) == (400, {"detail": "This sign-in link is not valid."})


def test_an_expired_code_is_410_detail(client, code, app):
    with database(app) as session:
        session.execute(sa.update(MagicLink).values(expires_at=MagicLink.created_at))

    response = client.post(SEED_LOGIN, json={"code": code})

    assert (response.status_code, response.json) == (
        410, {"detail": "This sign-in link has expired; request a new one."})


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, {"loc": ["body", "code"], "msg": "Field required", "type": "missing", "input": {}}),
        ({"code": None}, {"loc": ["body", "code"], "msg": "Input should be a valid string",
                          "type": "string_type", "input": None}),
        ({"code": 5}, {"loc": ["body", "code"], "msg": "Input should be a valid string",
                       "type": "string_type", "input": 5}),
        ({"code": "A" * 43, "deal_id": 7},
         {"loc": ["body", "deal_id"], "msg": "Input should be a valid string", "type": "string_type",
          "input": 7}),
        ([1], {"loc": ["body"], "type": "model_type", "input": [1]}),
    ],
)
def test_a_malformed_body_is_422_with_pydantics_own_items(client, body, problem):
    response = client.post(SEED_LOGIN, json=body)

    assert response.status_code == 422
    [item] = response.json["detail"]
    assert item.items() >= problem.items()
    assert {"loc", "msg", "type", "input"} <= set(item)


def test_a_problems_ctx_is_plain_json(client):
    response = client.post(SEED_LOGIN, json=[1])

    [item] = response.json["detail"]
    assert item["ctx"] == {"class_name": "MagicLinkVerifyBody"}


@pytest.mark.parametrize(
    ("data", "content_type", "type_"),
    [("{not json", "application/json", "json_invalid"),
     ('{"code": "x"}', "text/plain", "json_invalid"),
     ("", None, "missing")],
)
def test_a_body_that_is_not_json_is_422(client, data, content_type, type_):
    response = client.post(SEED_LOGIN, data=data, content_type=content_type)

    assert response.status_code == 422
    assert [item["type"] for item in response.json["detail"]] == [type_]
    assert response.json["detail"][0]["loc"] == ["body"]


def test_a_host_can_move_it(make_app, inbox):
    client = make_app(FAVSYNC_AUTH_URL_PREFIX="/auth/v2").test_client()
    Auth(client, inbox).request_link()

    moved = client.post("/auth/v2/magic-link/verify", json={"code": inbox.secret_for(VISITOR)})

    assert moved.status_code == 200
    assert "/auth/v2/magic-link/verify" in client.get(f"{API}/openapi.json").json["paths"]
    assert client.post(SEED_LOGIN, json={"code": "A" * 43}).status_code == 404


def test_a_host_can_turn_it_off(make_app):
    client = make_app(FAVSYNC_AUTH_URL_PREFIX="off").test_client()

    assert client.post(SEED_LOGIN, json={"code": "A" * 43}).status_code == 404
    assert not [p for p in client.get(f"{API}/openapi.json").json["paths"] if "magic-link/verify" in p]


def test_the_document_names_its_schemas_as_the_seed_does(client):
    schemas = client.get(f"{API}/openapi.json").json["components"]["schemas"]

    body = schemas["MagicLinkVerifyBody"]
    assert body["required"] == ["code"] and set(body["properties"]) == {"code", "deal_id"}
    assert body["properties"]["deal_id"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    login = schemas["LoginResponse"]
    assert login["required"] == ["access_token", "user"]
    assert login["properties"]["user"] == {"$ref": "#/components/schemas/LoginUserDict"}
    assert login["additionalProperties"] is True
    assert {"expires_in_minutes", "has_deals", "force_password_change", "matomo_visitor_id"} <= set(
        login["properties"])
    assert schemas["LoginUserDict"]["required"] == ["id"]
    assert set(schemas["LoginUserDict"]["properties"]) == {
        "id", "display_name", "email", "avatar_url", "provider"}
    assert schemas["HTTPValidationError"]["properties"]["detail"]["items"] == {
        "$ref": "#/components/schemas/ValidationError"}
    assert schemas["ValidationError"]["required"] == ["loc", "msg", "type"]
    assert [schemas["ValidationError"]["properties"][name]["title"]
            for name in ("loc", "msg", "type", "input", "ctx")] == [
        "Location", "Message", "Error Type", "Input", "Context"]

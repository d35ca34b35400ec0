"""schemas.py: the served document's schemas are the models', and both refuse what the server refuses."""
import pytest
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter

from favsync import create_app
from favsync.schemas import ANSWERS, NAMED_TYPES, REF_TEMPLATE, REQUESTS, SyncRequest

from conftest import API, Auth


@pytest.fixture
def served(client) -> dict:
    return client.get(f"{API}/openapi.json").json


def accepts(doc: dict, component: str, instance) -> bool:
    return Draft202012Validator({**doc, "$ref": REF_TEMPLATE.format(model=component)}).is_valid(instance)


@pytest.mark.parametrize("model", REQUESTS, ids=lambda model: model.__name__)
def test_each_request_schema_is_generated_from_its_model(served, app, model):
    expected = model.model_json_schema(ref_template=REF_TEMPLATE)
    if model is SyncRequest:
        for field in ("favorites", "removed"):
            expected["properties"][field]["maxItems"] = app.extensions["favsync"].settings.max_favorites
    components = served["components"]["schemas"]

    for name, schema in expected.pop("$defs", {}).items():
        assert components[name] == schema
    assert components[model.__name__] == expected


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda answer: answer.__name__)
def test_each_answer_schema_is_generated_from_its_model(served, answer):
    expected = TypeAdapter(answer).json_schema(ref_template=REF_TEMPLATE)
    components = served["components"]["schemas"]

    for name, schema in expected.pop("$defs", {}).items():
        assert components[name] == schema
    assert components[answer.__name__] == expected


@pytest.mark.parametrize("name", NAMED_TYPES)
def test_each_named_field_type_is_generated_from_its_pydantic_type(served, name):
    assert served["components"]["schemas"][name] == TypeAdapter(NAMED_TYPES[name]).json_schema()


def test_no_schema_in_the_document_is_written_by_hand(served):
    generated = {model.__name__ for model in REQUESTS + ANSWERS} | set(NAMED_TYPES)
    nested = {name for model in REQUESTS + ANSWERS
              for name in TypeAdapter(model).json_schema().get("$defs", {})}
    assert set(served["components"]["schemas"]) == generated | nested


def test_every_request_body_is_a_request_model(served):
    bodies = {
        media["schema"]["$ref"]
        for item in served["paths"].values()
        for operation in item.values()
        if "requestBody" in operation
        for media in operation["requestBody"]["content"].values()
    }

    assert bodies == {REF_TEMPLATE.format(model=model.__name__) for model in REQUESTS}


@pytest.mark.parametrize(
    "address",
    ["0", "", "not-an-email", "@example.com", "visitor@", "two@@example.com", "a@b",
     "visitor@example", "a" * 64 + "@" + "b" * 186 + ".com", "a" * 65 + "@example.com", 42, None],
)
def test_an_address_the_server_refuses_the_document_refuses_too(client, served, inbox, address):
    response = client.post(f"{API}/magic-link", json={"email": address})

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == ["body", "email"]
    assert not accepts(served, "MagicLinkRequest", {"email": address})
    assert not accepts(served, "VerifyCodeRequest", {"email": address, "code": "123456"})
    assert inbox.messages == []


@pytest.mark.parametrize(
    "address",
    ["visitor@example.com", "  Visitor@Example.COM ", "first.last+tag@mail.example.co.uk",
     "visitor@Bücher.example", "visitor@example\u3002com"],
)
def test_an_address_the_server_takes_the_document_takes_too(client, served, address):
    assert accepts(served, "MagicLinkRequest", {"email": address})
    assert client.post(f"{API}/magic-link", json={"email": address}).status_code == 202


def test_a_problem_names_only_loc_msg_and_type(client):
    response = client.post(f"{API}/magic-link", json={"email": "visitor@example.com", "next": "//evil.example"})

    assert response.json["error"]["details"] == [{
        "loc": ["body", "next"],
        "msg": "String should match pattern '^/(?:[!-.0-\\[\\]-~][!-\\[\\]-~]*)?$'",
        "type": "string_pattern_mismatch",
    }]


def test_every_invalid_field_is_reported_at_once(client):
    response = client.post(f"{API}/verify-code", json={"email": 5, "code": "12"})

    assert [problem["loc"] for problem in response.json["error"]["details"]] == [
        ["body", "email"], ["body", "code"]
    ]


def test_a_sync_reports_at_most_20_invalid_ids(client, auth):
    response = client.post(f"{API}/sync", json={"favorites": ["bad id"] * 30}, headers=auth.headers())

    assert response.status_code == 400
    assert len(response.json["error"]["details"]) == 20


def test_one_sync_over_the_limit_is_422_before_its_ids_are_read(config, inbox):
    config["FAVSYNC_MAX_FAVORITES"] = 3
    client = create_app(config).test_client()
    headers = Auth(client, inbox).headers()

    too_many = client.post(f"{API}/sync", json={"favorites": ["A1", "B2", "C3", "bad id"]}, headers=headers)
    at_the_limit = client.post(f"{API}/sync", json={"favorites": ["A1", "B2", "C3"]}, headers=headers)

    assert too_many.status_code == 422
    assert too_many.json["error"]["code"] == "too_many_favorites"
    assert at_the_limit.json["favorites"] == ["A1", "B2", "C3"]


@pytest.mark.parametrize(
    ("path", "body"),
    [("/verify", {"token": 1}), ("/verify-code", {"email": "v@example.com", "code": 123456}),
     ("/logout", {"all": 1}), ("/logout", {"all": "true"}), ("/magic-link", {"email": ["v@example.com"]})],
)
def test_types_are_strict(client, path, body):
    response = client.post(f"{API}{path}", json=body)

    assert response.status_code == 400
    assert response.json["error"]["code"] == "validation_error"

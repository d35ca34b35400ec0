"""The served OpenAPI document: valid 3.1, true to this deployment, and enforced on responses."""
import re

import pytest
from openapi_spec_validator import validate

from contract import check
from conftest import API


def test_the_document_is_served_and_valid_openapi_3_1(client):
    response = client.get(f"{API}/openapi.json")

    assert response.status_code == 200
    doc = response.json
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    assert set(doc["paths"]) == {
        f"{API}/magic-link", f"{API}/verify/{{token}}", f"{API}/verify", f"{API}/verify-code",
        f"{API}/token/refresh", f"{API}/logout", API, f"{API}/sync", f"{API}/{{listing_id}}",
        f"{API}/openapi.json", f"{API}/client.js", "/api/auth/magic-link/verify", f"{API}/preferences",
        "/api/v1/messages", "/api/v1/messages/{messageId}", "/api/v1/messages/unsubscribe/{signed}",
        "/api/v1/agents", "/api/v1/listings/{listing_id}/events",
    }


def test_the_document_follows_the_apps_settings(make_app):
    app = make_app(FAVSYNC_URL_PREFIX="/saved", FAVSYNC_MAX_FAVORITES=50,
                   FAVSYNC_MESSAGES_URL_PREFIX="/crm")
    doc = app.test_client().get("/saved/openapi.json").json

    assert "/saved/sync" in doc["paths"]
    assert "/crm/messages" in doc["paths"]
    assert doc["components"]["schemas"]["SyncRequest"]["properties"]["favorites"]["maxItems"] == 50


def test_every_route_of_favsync_is_documented(app):
    doc = app.test_client().get(f"{API}/openapi.json").json
    routes = {
        (re.sub(r"<([^>]+)>", r"{\1}", rule.rule).replace("{message_id}", "{messageId}"), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(("favsync.", "favsync_auth.", "favsync_messages."))
        and not rule.endpoint.endswith("unrouted")
        for method in rule.methods - {"OPTIONS"}
    }
    in_doc = {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    # Flask answers HEAD wherever GET is; only the verify link documents (and needs) it.
    documented_head = {(f"{API}/verify/{{token}}", "HEAD")}
    automatic_head = {(path, "HEAD") for path, method in routes if method == "GET"} - documented_head

    assert routes - automatic_head == in_doc


def fake(app, status, body, headers=None):
    response = app.response_class(response=body, status=status, mimetype="application/json",
                                  headers=headers or {})
    return response


def test_the_contract_check_catches_an_undocumented_status(app):
    with pytest.raises(AssertionError, match="status not in the document"):
        check(app, "GET", API, fake(app, 418, '{"success": false}'))


def test_the_contract_check_catches_a_body_that_breaks_the_schema(app):
    with pytest.raises(AssertionError, match="favorites"):
        check(app, "GET", API, fake(app, 200, '{"success": true, "favorites": [1]}'))
    with pytest.raises(AssertionError, match="Additional properties"):
        check(app, "DELETE", f"{API}/A1", fake(app, 200, '{"success": true, "favorites": [], "version": 1, "x": 1}'))


def test_the_contract_check_wants_documented_headers(app):
    body = '{"success": false, "error": {"code": "unauthorized", "message": "", "details": []}}'
    with pytest.raises(AssertionError, match="WWW-Authenticate"):
        check(app, "GET", API, fake(app, 401, body))
    check(app, "GET", API, fake(app, 401, body, {"WWW-Authenticate": "Bearer"}))


def test_the_contract_check_covers_seed_002s_login(app):
    login = "/api/auth/magic-link/verify"
    with pytest.raises(AssertionError, match="user"):
        check(app, "POST", login, fake(app, 200, '{"access_token": "x"}'))
    with pytest.raises(AssertionError, match="detail"):
        check(app, "POST", login, fake(app, 422, '{"detail": "not a list"}'))
    check(app, "POST", login, fake(app, 400, '{"detail": "This sign-in link is not valid."}'))

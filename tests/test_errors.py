"""Every error is the same JSON envelope, and no input makes a server error."""
import pytest

from conftest import API


def assert_envelope(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.json["success"] is False
    assert response.json["error"]["code"] == code
    assert isinstance(response.json["error"]["message"], str)
    assert isinstance(response.json["error"]["details"], list)


def test_an_unknown_url_is_a_json_404(client):
    assert_envelope(client.get("/no/such/page"), 404, "not_found")
    assert_envelope(client.get(f"{API}/verify/a/b"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", f"{API}/magic-link"), ("put", f"{API}/sync"), ("post", API), ("post", f"{API}/verify/x")],
)
def test_a_wrong_method_is_a_json_405(client, method, path):
    response = getattr(client, method)(path)

    assert_envelope(response, 405, "method_not_allowed")
    assert "Allow" in response.headers


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        (API, "GET, HEAD, OPTIONS"),
        (f"{API}/verify/x", "GET, HEAD, OPTIONS"),
        (f"{API}/token/refresh", "POST, OPTIONS"),
        (f"{API}/sync", "POST, DELETE, OPTIONS"),  # DELETE: the listing id "sync"
        (f"{API}/C9231328", "DELETE, OPTIONS"),
    ],
)
def test_options_lists_the_methods_of_the_route_it_names(client, path, allow):
    response = client.options(path)

    assert response.status_code == 204
    assert response.headers["Allow"] == allow
    assert not response.data and "Content-Type" not in response.headers
    assert client.put(path).headers["Allow"] == allow  # the 405 agrees


def test_options_on_an_unknown_url_is_a_json_404(client):
    assert_envelope(client.options(f"{API}/no/such/page"), 404, "not_found")


GARBAGE = [
    b"",
    b"\x00\xff\xfe",
    b"{" * 5000,
    b"[" * 5000,
    b'{"email": ' + b"[" * 100000 + b"]" * 100000 + b"}",
    b'{"email": "\\ud800@example.com"}',
    b'{"email": "a@example.com", "email": 5}',
    b'{"favorites": [' + b"[" * 900 + b"]" * 900 + b"]}",
    b"1e999999",
    b'{"email": "' + "é".encode() * 100 + b'@example.com"}',
]


@pytest.mark.parametrize("body", GARBAGE)
@pytest.mark.parametrize("path", [f"{API}/magic-link", f"{API}/sync"])
def test_garbage_bodies_never_cause_a_server_error(client, auth, path, body):
    headers = auth.headers()

    response = client.post(path, data=body, content_type="application/json", headers=headers)

    assert 400 <= response.status_code < 500
    assert response.json["success"] is False


@pytest.mark.parametrize(
    "token", ["x" * 5000, "%ff%fe", "..%2f..%2fetc", "A" * 43 + "%00"]
)
def test_hostile_verify_paths_are_client_errors(client, token):
    response = client.get(f"{API}/verify/{token}")

    assert 400 <= response.status_code < 500
    assert response.json["success"] is False

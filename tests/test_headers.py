"""What every answer says about itself: no content sniffing, and signed-in answers never cached."""
import pytest

from conftest import API, bearer


@pytest.fixture
def answers(client, auth):
    """One answer of each kind favsync gives."""
    token = auth.token()
    return {
        "login": auth.login_response("other@example.com"),
        "list": client.get(API, headers=bearer(token)),
        "sync": client.post(f"{API}/sync", json={"favorites": ["A1"]}, headers=bearer(token)),
        "delete": client.delete(f"{API}/A1", headers=bearer(token)),
        "invalid sync": client.post(f"{API}/sync", json={"favorites": 5}, headers=bearer(token)),
        "unauthorized": client.get(API),
        "magic link": auth.request_link("third@example.com"),
        "not found": client.get(f"{API}/no/such/thing"),
        "seed login error": client.post("/api/auth/magic-link/verify", json={}),
        "document": client.get(f"{API}/openapi.json"),
        "outside favsync": client.get("/nowhere"),
        "health": client.get("/healthz"),
    }


def test_every_answer_forbids_content_sniffing(answers):
    assert {name: r.headers.get("X-Content-Type-Options") for name, r in answers.items()} == {
        name: "nosniff" for name in answers}


@pytest.mark.parametrize("name", ["login", "sync", "delete", "invalid sync"])
def test_signed_in_answers_are_never_stored(answers, name):
    assert answers[name].headers["Cache-Control"] == "no-store"


def test_the_list_is_revalidated_by_its_etag_and_never_shared(answers):
    # Conditional GETs (304 on If-None-Match) need a cache; only the browser's own.
    assert answers["list"].headers["Cache-Control"] == "private, no-cache"
    assert answers["list"].headers["ETag"]


def test_an_embedding_sites_own_pages_are_left_alone(make_host, inbox):
    client = make_host().test_client()

    assert "X-Content-Type-Options" not in client.get("/").headers
    assert client.get("/favs").headers["X-Content-Type-Options"] == "nosniff"

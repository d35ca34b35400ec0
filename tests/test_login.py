"""Logging in the way the real world needs: POST verify, typed codes, redirects, refresh, logout."""
import re
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from favsync import create_app
from favsync.database import session
from favsync.models import MagicLink
from favsync.tokens import sha256_hex

from conftest import API, Auth

COOKIE = "favsync_refresh"


def secret_of(link):
    return urlsplit(link).path.rsplit("/", 1)[1]


def code_in(inbox, address):
    text = inbox.to(address)[-1].get_body(("plain",)).get_content()
    return re.search(r"type this code: ([0-9]{6})", text).group(1)


def set_cookie(response):
    [header] = [v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith(COOKIE)]
    return header


def cookie_value(response):
    return SimpleCookie(set_cookie(response))[COOKIE].value


def request_link(client, address="visitor@example.com", **body):
    return client.post(f"{API}/magic-link", json={"email": address, **body})


# --- POST verify ---------------------------------------------------------


@pytest.mark.parametrize("field", ["token", "code"])
def test_post_verify_answers_like_get(client, inbox, field):
    request_link(client)
    response = client.post(f"{API}/verify", json={field: secret_of(inbox.link_for("visitor@example.com"))})

    assert response.status_code == 200
    assert set(response.json) == {"success", "client_id", "auth_token", "favorites", "email", "version"}


def test_post_verify_consumes_the_link_once(client, inbox):
    request_link(client)
    token = secret_of(inbox.link_for("visitor@example.com"))

    assert client.post(f"{API}/verify", json={"token": token}).status_code == 200
    assert client.get(f"{API}/verify/{token}").json["error"]["code"] == "token_used"


@pytest.mark.parametrize("body", [{}, {"token": 5}, {"token": "short"}, {"code": None}])
def test_post_verify_rejects_a_bad_body(client, body):
    assert client.post(f"{API}/verify", json=body).status_code == 400


# --- typed codes ---------------------------------------------------------


def test_the_typed_code_logs_in(client, inbox):
    request_link(client)

    response = client.post(f"{API}/verify-code", json={"email": "Visitor@Example.com",
                                                       "code": code_in(inbox, "visitor@example.com")})

    assert response.status_code == 200
    assert response.json["email"] == "visitor@example.com"
    assert set(response.json) == {"success", "client_id", "auth_token", "favorites", "email", "version"}


def test_the_code_and_the_link_are_one_login(client, inbox):
    request_link(client)
    code = code_in(inbox, "visitor@example.com")
    client.post(f"{API}/verify-code", json={"email": "visitor@example.com", "code": code})

    assert client.get(urlsplit(inbox.link_for("visitor@example.com")).path).status_code == 410
    again = client.post(f"{API}/verify-code", json={"email": "visitor@example.com", "code": code})
    assert again.status_code == 400


def test_the_link_also_burns_the_code(client, inbox):
    request_link(client)
    code = code_in(inbox, "visitor@example.com")
    client.get(urlsplit(inbox.link_for("visitor@example.com")).path)

    response = client.post(f"{API}/verify-code", json={"email": "visitor@example.com", "code": code})

    assert response.status_code == 400


def test_codes_are_stored_only_as_a_keyed_hash(client, inbox, app):
    request_link(client)
    code = code_in(inbox, "visitor@example.com")

    with app.app_context():
        stored = session().scalar(sa.select(MagicLink.code))
    assert len(stored) == 64 and code not in stored
    assert stored not in {sha256_hex(code), sha256_hex(f"visitor@example.com:{code}")}


def test_five_wrong_codes_kill_the_pending_links(client, inbox, app):
    request_link(client)
    request_link(client)
    right = code_in(inbox, "visitor@example.com")
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    link = inbox.link_for("visitor@example.com")

    statuses = [
        client.post(f"{API}/verify-code", json={"email": "visitor@example.com", "code": wrong})
        for _ in range(5)
    ]
    after = client.post(f"{API}/verify-code", json={"email": "visitor@example.com", "code": right})

    assert [r.status_code for r in statuses] == [400, 400, 400, 400, 410]
    assert statuses[-1].json["error"]["code"] == "too_many_attempts"
    assert "request a new one" in statuses[-1].json["error"]["message"]
    assert after.status_code == 410
    assert client.get(urlsplit(link).path).json["error"]["code"] == "too_many_attempts"
    # Dead links hold no slot: the visitor can ask again at once, and the new code works.
    assert request_link(client).status_code == 202
    fresh = client.post(f"{API}/verify-code", json={"email": "visitor@example.com",
                                                    "code": code_in(inbox, "visitor@example.com")})
    assert fresh.status_code == 200


def test_a_code_answer_does_not_reveal_whether_links_are_pending(client, inbox):
    request_link(client, "someone@example.com")
    right = code_in(inbox, "someone@example.com")
    wrong = f"{(int(right) + 1) % 10**6:06d}"

    pending = client.post(f"{API}/verify-code", json={"email": "someone@example.com", "code": wrong})
    nothing = client.post(f"{API}/verify-code", json={"email": "nobody@example.com", "code": wrong})

    assert pending.status_code == nothing.status_code == 400
    assert pending.json == nothing.json


def test_a_new_link_does_not_reset_the_wrong_code_count(client, inbox):
    request_link(client)
    right = code_in(inbox, "visitor@example.com")
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    guess = {"email": "visitor@example.com", "code": wrong}
    first = [client.post(f"{API}/verify-code", json=guess).status_code for _ in range(4)]

    request_link(client)
    fifth = client.post(f"{API}/verify-code", json=guess)

    assert first == [400] * 4
    assert fifth.status_code == 410


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", 123456, None, "12 34 5"])
def test_a_malformed_code_is_a_validation_error(client, code):
    response = client.post(f"{API}/verify-code", json={"email": "v@example.com", "code": code})

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == ["body", "code"]


def test_code_attempts_are_rate_limited_per_ip(config):
    config["FAVSYNC_RATELIMIT_VERIFY_CODE_PER_IP"] = "3 per hour"
    client = create_app(config).test_client()

    statuses = [
        client.post(f"{API}/verify-code", json={"email": f"v{i}@example.com", "code": "123456"}).status_code
        for i in range(4)
    ]

    assert statuses == [400, 400, 400, 429]


# --- next / redirect -----------------------------------------------------


def test_next_comes_back_as_redirect_and_stays_out_of_the_email(client, inbox):
    request_link(client, next="/listings/C9231328?tab=photos#top")
    message = inbox.to("visitor@example.com")[-1].get_body(("plain",)).get_content()

    response = client.get(urlsplit(inbox.link_for("visitor@example.com")).path)

    assert "C9231328" not in message
    assert response.json["redirect"] == "/listings/C9231328?tab=photos#top"


def test_redirect_comes_back_with_the_code_too(client, inbox):
    request_link(client, next="/search")

    response = client.post(f"{API}/verify-code", json={"email": "visitor@example.com",
                                                       "code": code_in(inbox, "visitor@example.com")})

    assert response.json["redirect"] == "/search"


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example", "/\\evil.example", "https://evil.example/", "javascript:alert(1)",
     "evil.example", "", "/a\x00b", "/a\nb", "/a\tb", "/ spaced", "/" + "a" * 512, 42, ["/x"],
     "/\\/evil.example"],
)
def test_next_refuses_anything_but_a_local_path(client, inbox, app, next_path):
    response = request_link(client, next=next_path)

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == ["body", "next"]
    assert inbox.messages == []
    with app.app_context():
        assert session().scalar(sa.select(sa.func.count()).select_from(MagicLink)) == 0


def test_next_may_be_512_characters(client):
    assert request_link(client, next="/" + "a" * 511).status_code == 202


# --- refresh cookie ------------------------------------------------------


def test_verification_sets_the_refresh_cookie_and_keeps_it_out_of_the_body(client, inbox):
    request_link(client)
    response = client.get(urlsplit(inbox.link_for("visitor@example.com")).path)

    header = set_cookie(response)
    assert "HttpOnly" in header and "Secure" in header and "SameSite=Lax" in header
    assert f"Path={API};" in header
    assert cookie_value(response) not in response.get_data(as_text=True)
    assert "refresh" not in response.get_data(as_text=True)


def test_refresh_rotates_the_cookie(client, inbox, auth):
    auth.login()
    first = client.get_cookie(COOKIE, path=API).value

    refreshed = client.post(f"{API}/token/refresh")

    assert refreshed.status_code == 200
    assert set(refreshed.json) == {"success", "client_id", "email", "auth_token"}
    second = cookie_value(refreshed)
    assert second != first
    bearer = {"Authorization": f"Bearer {refreshed.json['auth_token']}"}
    assert client.get(API, headers=bearer).status_code == 200


def age_rotations(app, seconds):
    from datetime import timedelta

    from favsync.models import RefreshToken

    with app.app_context():
        for token in session().scalars(sa.select(RefreshToken).where(RefreshToken.rotated_at.is_not(None))):
            token.rotated_at -= timedelta(seconds=seconds)
        session().commit()


def test_a_reused_refresh_token_ends_its_whole_family(client, auth, app):
    auth.login()
    stolen = client.get_cookie(COOKIE, path=API).value
    client.post(f"{API}/token/refresh")  # the real device rotates
    current = client.get_cookie(COOKIE, path=API).value
    age_rotations(app, 31)  # past the grace for concurrent refreshes

    client.set_cookie(COOKIE, stolen, path=API)
    reuse = client.post(f"{API}/token/refresh")
    client.set_cookie(COOKIE, current, path=API)
    after = client.post(f"{API}/token/refresh")

    assert reuse.status_code == 401 and reuse.json["error"]["code"] == "refresh_token_reused"
    assert after.status_code == 401 and after.json["error"]["code"] == "invalid_refresh_token"


def test_two_tabs_refreshing_at_once_both_stay_signed_in(config, inbox):
    app = create_app(config)
    first, second = app.test_client(), app.test_client()
    Auth(first, inbox).login("v@example.com")
    second.set_cookie(COOKIE, first.get_cookie(COOKIE, path=API).value, path=API)

    answers = [first.post(f"{API}/token/refresh"), second.post(f"{API}/token/refresh")]

    assert [a.status_code for a in answers] == [200, 200]
    assert first.post(f"{API}/token/refresh").status_code == 200
    assert second.post(f"{API}/token/refresh").status_code == 200


def test_login_answers_are_not_cached(client, auth, inbox):
    auth.request_link("v@example.com")
    login = client.get(urlsplit(inbox.link_for("v@example.com")).path)

    assert login.headers["Cache-Control"] == "no-store"
    assert client.post(f"{API}/token/refresh").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("cookie", [None, "", "garbage", "A" * 43])
def test_refresh_without_a_valid_cookie_is_401(client, cookie):
    if cookie is not None:
        client.set_cookie(COOKIE, cookie, path=API)

    response = client.post(f"{API}/token/refresh")

    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_refresh_token"


def test_the_refresh_cookie_can_be_relaxed_for_local_http(config, inbox):
    config["FAVSYNC_REFRESH_COOKIE_SECURE"] = False
    client = create_app(config).test_client()
    Auth(client, inbox).request_link("v@example.com")

    response = client.get(urlsplit(inbox.link_for("v@example.com")).path)

    assert "Secure" not in set_cookie(response)


# --- logout --------------------------------------------------------------


def test_logout_ends_this_devices_session(client, auth):
    auth.login()

    response = client.post(f"{API}/logout")

    assert response.status_code == 200 and response.json == {"success": True}
    assert "Max-Age=0" in set_cookie(response) or "expires=Thu, 01 Jan 1970" in set_cookie(response)
    assert client.post(f"{API}/token/refresh").status_code == 401


def test_logout_of_one_device_leaves_the_other(config, inbox):
    app = create_app(config)
    phone, laptop = app.test_client(), app.test_client()
    Auth(phone, inbox).login("v@example.com")
    Auth(laptop, inbox).login("v@example.com")

    phone.post(f"{API}/logout")

    assert laptop.post(f"{API}/token/refresh").status_code == 200


def test_logout_everywhere_refuses_every_earlier_token(config, inbox):
    app = create_app(config)
    phone, laptop = app.test_client(), app.test_client()
    phone_token = Auth(phone, inbox).login("v@example.com")["auth_token"]
    laptop_token = Auth(laptop, inbox).login("v@example.com")["auth_token"]

    response = phone.post(f"{API}/logout", json={"all": True},
                          headers={"Authorization": f"Bearer {phone_token}"})

    assert response.status_code == 200
    for client, token in ((phone, phone_token), (laptop, laptop_token)):
        refused = client.get(API, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401
    assert laptop.post(f"{API}/token/refresh").status_code == 401
    # Logging in again works at once, even within the same second.
    fresh = Auth(phone, inbox).login("v@example.com")["auth_token"]
    assert phone.get(API, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_logout_everywhere_with_the_cookie_alone(client, auth):
    token = auth.login()["auth_token"]

    assert client.post(f"{API}/logout", json={"all": True}).status_code == 200
    assert client.get(API, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_logout_everywhere_with_a_stale_token_falls_back_to_the_cookie(client, auth):
    token = auth.login()["auth_token"]

    response = client.post(f"{API}/logout", json={"all": True},
                           headers={"Authorization": "Bearer expired.or.garbage"})

    assert response.status_code == 200
    assert client.get(API, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_logout_everywhere_needs_to_know_who(client):
    response = client.post(f"{API}/logout", json={"all": True})

    assert response.status_code == 401


@pytest.mark.parametrize("body", [{"all": "yes"}, {"all": 1}, [1]])
def test_logout_rejects_a_bad_body(client, body):
    assert client.post(f"{API}/logout", json=body).status_code == 400

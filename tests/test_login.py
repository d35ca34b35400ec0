"""Logging in the way the real world needs: POST verify, typed codes, redirects, refresh, logout."""
from datetime import timedelta

from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa

from conftest import (
    API, CODE_ALPHABET, COOKIE, VISITOR, Auth, MagicLink, RefreshToken, bearer, cookie_value, count,
    database, digest, log_out, refresh, rows, set_cookie,
)

VERIFIED = {"success", "client_id", "auth_token", "favorites", "email", "version", "same_browser"}


def wrong(code):
    """A well-formed code that is not `code`."""
    first = CODE_ALPHABET[(CODE_ALPHABET.index(code[0]) + 1) % len(CODE_ALPHABET)]
    return first + code[1:]


# --- POST verify ---------------------------------------------------------


@pytest.mark.parametrize("field", ["token", "code"])
def test_post_verify_answers_like_get(client, auth, inbox, field):
    auth.request_link()
    response = client.post(f"{API}/verify", json={field: inbox.secret_for(VISITOR)})

    assert response.status_code == 200
    assert set(response.json) == VERIFIED


def test_post_verify_consumes_the_link_once(client, auth, inbox):
    auth.request_link()
    token = inbox.secret_for(VISITOR)

    assert client.post(f"{API}/verify", json={"token": token}).status_code == 200
    assert client.get(f"{API}/verify/{token}").json["error"]["code"] == "token_used"


@pytest.mark.parametrize("body", [{}, {"token": 5}, {"token": "short"}, {"code": None}])
def test_post_verify_rejects_a_bad_body(client, body):
    assert client.post(f"{API}/verify", json=body).status_code == 400


# --- typed codes ---------------------------------------------------------


def test_the_typed_code_logs_in(auth, inbox):
    auth.request_link()

    response = auth.enter_code(inbox.code_for(VISITOR), "Visitor@Example.com")

    assert response.status_code == 200
    assert response.json["email"] == VISITOR
    assert set(response.json) == VERIFIED


def test_the_link_and_the_code_each_sign_in_once(auth, inbox):
    auth.request_link()
    code, link = inbox.code_for(VISITOR), inbox.link_for(VISITOR)

    # The link opened on a phone, the code typed in the laptop's tab that asked.
    assert auth.follow(link).status_code == 200
    assert auth.enter_code(code).status_code == 200

    again = auth.follow(link)
    assert (again.status_code, again.json["error"]["code"]) == (410, "token_used")
    assert "another browser" in again.json["error"]["message"]
    used = auth.enter_code(code)
    assert (used.status_code, used.json["error"]["code"]) == (410, "code_used")


def test_a_used_code_is_not_counted_as_a_wrong_guess(auth, inbox, app):
    auth.request_link()
    code = inbox.code_for(VISITOR)
    auth.enter_code(code)

    for _ in range(6):
        assert auth.enter_code(code).json["error"]["code"] == "code_used"
    assert auth.follow(inbox.link_for(VISITOR)).status_code == 200  # still the link's one use
    [attempts] = rows(app, sa.select(MagicLink.failed_attempts))
    assert attempts == 0


def test_codes_are_stored_only_as_a_keyed_hash(auth, inbox, app):
    auth.request_link()
    code = inbox.code_for(VISITOR)

    [stored] = rows(app, sa.select(MagicLink.code))
    assert len(stored) == 64 and code not in stored
    assert stored not in {digest(code), digest(f"{VISITOR}:{code}")}


def test_five_wrong_codes_kill_the_pending_links(auth, inbox):
    auth.request_link()
    auth.request_link()
    right = inbox.code_for(VISITOR)
    link = inbox.link_for(VISITOR)

    statuses = [auth.enter_code(wrong(right)) for _ in range(5)]
    after = auth.enter_code(right)

    assert [r.status_code for r in statuses] == [400, 400, 400, 400, 410]
    assert statuses[-1].json["error"]["code"] == "too_many_attempts"
    assert "request a new one" in statuses[-1].json["error"]["message"]
    assert after.status_code == 410
    assert auth.follow(link).json["error"]["code"] == "too_many_attempts"
    # Dead links hold no slot: the visitor can ask again at once, and the new code works.
    assert auth.request_link().status_code == 202
    assert auth.enter_code(inbox.code_for(VISITOR)).status_code == 200


def test_a_code_answer_does_not_reveal_whether_links_are_pending(auth, inbox):
    auth.request_link("someone@example.com")
    guess = wrong(inbox.code_for("someone@example.com"))

    pending = auth.enter_code(guess, "someone@example.com")
    nothing = auth.enter_code(guess, "nobody@example.com")

    assert pending.status_code == nothing.status_code == 400
    assert pending.json["error"]["code"] == "invalid_code"
    assert pending.json == nothing.json


def test_a_new_link_does_not_reset_the_wrong_code_count(auth, inbox):
    auth.request_link()
    guess = wrong(inbox.code_for(VISITOR))
    first = [auth.enter_code(guess).status_code for _ in range(4)]

    auth.request_link()
    fifth = auth.enter_code(guess)

    assert first == [400] * 4
    assert fifth.status_code == 410


@pytest.mark.parametrize(
    "code", ["12345", "123456", "ABCD-EFG", "ABCD-EFGHJ", "ABCD--EFGH", "ABCO-EFGH", "ABC1-EFGH",
             12345678, None, "ABCD_EFGH"],
)
def test_a_malformed_code_is_a_validation_error(auth, code):
    response = auth.enter_code(code, "v@example.com")

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == ["body", "code"]


# --- next / redirect -----------------------------------------------------


def test_next_comes_back_as_redirect_and_stays_out_of_the_email(auth, inbox):
    auth.request_link(next="/listings/C9231328?tab=photos#top")
    message = inbox.text_for(VISITOR)

    response = auth.follow(inbox.link_for(VISITOR))

    assert "C9231328" not in message
    assert response.json["redirect"] == "/listings/C9231328?tab=photos#top"


def test_redirect_comes_back_with_the_code_too(auth, inbox):
    auth.request_link(next="/search")

    response = auth.enter_code(inbox.code_for(VISITOR))

    assert response.json["redirect"] == "/search"


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example", "/\\evil.example", "https://evil.example/", "javascript:alert(1)",
     "evil.example", "", "/a\x00b", "/a\nb", "/a\tb", "/ spaced", "/" + "a" * 512, 42, ["/x"],
     "/\\/evil.example"],
)
def test_next_refuses_anything_but_a_local_path(auth, inbox, app, next_path):
    response = auth.request_link(next=next_path)

    assert response.status_code == 400
    assert response.json["error"]["details"][0]["loc"] == ["body", "next"]
    assert inbox.messages == []
    assert count(app, MagicLink) == 0


def test_next_may_be_512_characters(auth):
    assert auth.request_link(next="/" + "a" * 511).status_code == 202


# --- refresh cookie ------------------------------------------------------


def test_verification_sets_the_refresh_cookie_and_keeps_it_out_of_the_body(auth, inbox):
    auth.request_link()
    response = auth.follow(inbox.link_for(VISITOR))

    header = set_cookie(response)
    assert "HttpOnly" in header and "Secure" in header and "SameSite=Lax" in header
    assert f"Path={API};" in header
    assert cookie_value(response) not in response.get_data(as_text=True)
    assert "refresh" not in response.get_data(as_text=True)


def test_refresh_rotates_the_cookie(client, auth):
    auth.login()
    first = client.get_cookie(COOKIE, path=API).value

    refreshed = refresh(client)

    assert refreshed.status_code == 200
    assert set(refreshed.json) == {"success", "client_id", "email", "auth_token"}
    second = cookie_value(refreshed)
    assert second != first
    assert client.get(API, headers=bearer(refreshed.json["auth_token"])).status_code == 200


def age_rotations(app, seconds):
    with database(app) as session:
        for token in session.scalars(sa.select(RefreshToken).where(RefreshToken.rotated_at.is_not(None))):
            token.rotated_at -= timedelta(seconds=seconds)


def test_a_reused_refresh_token_ends_its_whole_family(client, auth, app):
    auth.login()
    stolen = client.get_cookie(COOKIE, path=API).value
    refresh(client)  # the real device rotates
    current = client.get_cookie(COOKIE, path=API).value
    age_rotations(app, 31)  # past the grace for concurrent refreshes

    client.set_cookie(COOKIE, stolen, path=API)
    reuse = refresh(client)
    client.set_cookie(COOKIE, current, path=API)
    after = refresh(client)

    assert reuse.status_code == 401 and reuse.json["error"]["code"] == "refresh_token_reused"
    assert after.status_code == 401 and after.json["error"]["code"] == "invalid_refresh_token"


def test_two_tabs_refreshing_at_once_both_stay_signed_in(app, inbox):
    first, second = app.test_client(), app.test_client()
    Auth(first, inbox).login("v@example.com")
    second.set_cookie(COOKIE, first.get_cookie(COOKIE, path=API).value, path=API)

    answers = [refresh(first), refresh(second)]

    assert [a.status_code for a in answers] == [200, 200]
    assert refresh(first).status_code == 200
    assert refresh(second).status_code == 200


def live_tokens(app) -> int:
    """Refresh tokens that can still be rotated (neither rotated, revoked nor expired)."""
    return len(rows(app, sa.select(RefreshToken.id).where(
        RefreshToken.rotated_at.is_(None), RefreshToken.revoked_at.is_(None))))


def test_a_replayed_cookie_gets_an_auth_token_but_never_a_second_live_refresh_token(client, auth, app):
    auth.login()
    replayed = client.get_cookie(COOKIE, path=API).value
    rotated = refresh(client)
    successor = cookie_value(rotated)

    replies = []
    for _ in range(100):  # within the grace window: two tabs, or a retry after a lost answer
        client.set_cookie(COOKIE, replayed, path=API)
        replies.append(refresh(client))

    assert [r.status_code for r in replies] == [200] * 100
    assert not [r for r in replies if "Set-Cookie" in r.headers]  # the browser holds the successor
    assert all(client.get(API, headers=bearer(r.json["auth_token"])).status_code == 200 for r in replies)
    assert live_tokens(app) == 1
    assert len({row for row in rows(app, sa.select(RefreshToken.family))}) == 1
    client.set_cookie(COOKIE, successor, path=API)
    assert refresh(client).status_code == 200


def move_sign_in_back(app, minutes):
    """Move the clock: the session's tokens were made (and expire) `minutes` earlier."""
    with database(app) as session:
        for token in session.scalars(sa.select(RefreshToken)):
            token.family_started_at -= timedelta(minutes=minutes)
            token.created_at -= timedelta(minutes=minutes)
            token.expires_at -= timedelta(minutes=minutes)


def test_a_session_ends_at_its_absolute_lifetime_however_often_it_refreshes(make_app, inbox):
    app = make_app(FAVSYNC_REFRESH_ABSOLUTE_TTL=3600)
    client = app.test_client()
    token = Auth(client, inbox).token("v@example.com")
    move_sign_in_back(app, minutes=50)

    refreshed = refresh(client)

    assert refreshed.status_code == 200
    assert 590 <= int(SimpleCookie(set_cookie(refreshed))[COOKIE]["max-age"]) <= 600
    [live] = rows(app, sa.select(RefreshToken).where(RefreshToken.rotated_at.is_(None)))
    assert live.expires_at == live.family_started_at + timedelta(hours=1)
    move_sign_in_back(app, minutes=10)  # an hour after the sign-in
    assert refresh(client).status_code == 401
    assert client.get(API, headers=bearer(token)).status_code == 401
    assert client.get(API, headers=bearer(refreshed.json["auth_token"])).status_code == 401


def test_login_answers_are_not_cached(client, auth, inbox):
    auth.request_link("v@example.com")
    login = auth.follow(inbox.link_for("v@example.com"))

    assert login.headers["Cache-Control"] == "no-store"
    assert refresh(client).headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("cookie", [None, "", "garbage", "A" * 43])
def test_refresh_without_a_valid_cookie_is_401(client, cookie):
    if cookie is not None:
        client.set_cookie(COOKIE, cookie, path=API)

    response = refresh(client)

    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_refresh_token"


def test_the_refresh_cookie_can_be_relaxed_for_local_http(make_app, inbox):
    auth = Auth(make_app(FAVSYNC_REFRESH_COOKIE_SECURE=False).test_client(), inbox)
    auth.request_link("v@example.com")

    response = auth.follow(inbox.link_for("v@example.com"))

    assert "Secure" not in set_cookie(response)


# --- logout --------------------------------------------------------------


def test_logout_ends_this_devices_session(client, auth):
    auth.login()

    response = log_out(client)

    assert response.status_code == 200 and response.json == {"success": True}
    assert "Max-Age=0" in set_cookie(response) or "expires=Thu, 01 Jan 1970" in set_cookie(response)
    assert refresh(client).status_code == 401


def test_logout_of_one_device_leaves_the_other(app, inbox):
    phone, laptop = app.test_client(), app.test_client()
    Auth(phone, inbox).login("v@example.com")
    laptop_token = Auth(laptop, inbox).token("v@example.com")

    log_out(phone)

    assert refresh(laptop).status_code == 200
    assert laptop.get(API, headers=bearer(laptop_token)).status_code == 200


def test_logout_ends_this_devices_auth_tokens_from_the_next_request(client, auth):
    token = auth.token()
    refreshed = refresh(client).json["auth_token"]
    assert client.get(API, headers=bearer(token)).status_code == 200

    log_out(client)

    for earlier in (token, refreshed):
        response = client.get(API, headers=bearer(earlier))
        assert response.status_code == 401
        assert response.json["error"]["code"] == "unauthorized"


def test_logout_with_the_auth_token_alone_ends_its_session(app, inbox):
    client = app.test_client()
    token = Auth(client, inbox).token("v@example.com")
    client.delete_cookie(COOKIE, path=API)  # say, a browser that did not keep it

    assert log_out(client, headers=bearer(token)).status_code == 200
    assert client.get(API, headers=bearer(token)).status_code == 401


def test_logout_everywhere_refuses_every_earlier_token(app, inbox):
    phone, laptop = app.test_client(), app.test_client()
    phone_token = Auth(phone, inbox).token("v@example.com")
    laptop_token = Auth(laptop, inbox).token("v@example.com")

    response = log_out(phone, {"all": True}, headers=bearer(phone_token))

    assert response.status_code == 200
    for client, token in ((phone, phone_token), (laptop, laptop_token)):
        assert client.get(API, headers=bearer(token)).status_code == 401
    assert refresh(laptop).status_code == 401
    # Logging in again works at once, even within the same second.
    fresh = Auth(phone, inbox).token("v@example.com")
    assert phone.get(API, headers=bearer(fresh)).status_code == 200


def test_logout_everywhere_with_the_cookie_alone(client, auth):
    token = auth.token()

    assert log_out(client, {"all": True}).status_code == 200
    assert client.get(API, headers=bearer(token)).status_code == 401


def test_logout_everywhere_with_a_stale_token_falls_back_to_the_cookie(client, auth):
    token = auth.token()

    response = log_out(client, {"all": True}, headers=bearer("expired.or.garbage"))

    assert response.status_code == 200
    assert client.get(API, headers=bearer(token)).status_code == 401


def test_logout_everywhere_needs_to_know_who(client):
    response = log_out(client, {"all": True})

    assert response.status_code == 401


@pytest.mark.parametrize("body", [{"all": "yes"}, {"all": 1}, [1]])
def test_logout_rejects_a_bad_body(client, body):
    assert client.post(f"{API}/logout", json=body).status_code == 400


@pytest.mark.parametrize("everywhere", [False, True])
def test_every_favourites_request_refuses_an_ended_session_and_changes_nothing(
    app, inbox, everywhere
):
    # The favourites reads check the token in the statement that reads the list:
    # each path must still refuse it, the writes before touching anything.
    client = app.test_client()
    token = Auth(client, inbox).token("v@example.com")
    headers = bearer(token)
    assert client.post(f"{API}/sync", json={"favorites": ["A1", "B2"]}, headers=headers).status_code == 200
    etag = client.get(API, headers=headers).headers["ETag"]
    log_out(client, {"all": everywhere}, headers=headers)

    answers = [
        client.get(API, headers=headers),
        client.get(API, headers={**headers, "If-None-Match": etag}),
        client.get(API, headers=headers, query_string={"since": 0}),
        client.post(f"{API}/sync", json={"favorites": ["A1"]}, headers=headers),
        client.post(f"{API}/sync", json={"favorites": ["C3"]}, headers=headers),
        client.delete(f"{API}/A1", headers=headers),
    ]

    assert [a.status_code for a in answers] == [401] * 6
    assert {a.json["error"]["code"] for a in answers} == {"unauthorized"}
    fresh = bearer(Auth(client, inbox).token("v@example.com"))
    assert client.get(API, headers=fresh).json["favorites"] == ["A1", "B2"]
    assert client.get(API, headers=fresh).json["version"] == 1

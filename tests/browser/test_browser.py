"""The product as a visitor uses it, in real Chromium: hearts, the emailed link, the code,
devices, refresh, log out, and mail scanners."""
from __future__ import annotations

import urllib.request

import pytest

pytest_plugins = ["browser"]  # the fixtures: browser, site, devices
pytestmark = [pytest.mark.browser, pytest.mark.server]
VISITOR = "visitor@example.com"


def test_hearts_survive_a_reload_while_anonymous(devices):
    phone = devices("phone").open()
    phone.heart("C9231328")
    phone.heart("98970014")
    phone.heart("98970014")  # un-heart

    phone.page.reload()

    phone.shows(["C9231328"])
    assert phone.page.get_attribute('favsync-heart[listing="C9231328"] button', "aria-pressed") == "true"
    assert phone.page.get_attribute('favsync-heart[listing="98970014"] button', "aria-pressed") == "false"


def test_a_link_opened_on_another_device_and_the_code_typed_here_both_sign_in(devices, inbox):
    laptop, phone = devices("laptop").open(), devices("phone").open()
    laptop.heart("C9231328")
    phone.heart("98970014")
    laptop.ask_link(VISITOR)

    phone.land(inbox.link_for(VISITOR), merge=True)  # the email opened on the phone
    phone.signed_in_as(VISITOR)
    phone.shows(["98970014"])
    assert phone.asked == [f"Sign in as {VISITOR} and add this browser's 1 favourites?"]
    laptop.type_code(inbox.code_for(VISITOR))  # the code typed in the tab that asked
    laptop.signed_in_as(VISITOR)

    laptop.shows(["C9231328", "98970014"])
    phone.page.reload()
    phone.shows(["C9231328", "98970014"])


def test_mail_scanners_do_not_burn_the_login(devices, inbox):
    laptop = devices("laptop").open()
    laptop.heart("C9231328")
    laptop.ask_link(VISITOR)
    link = inbox.link_for(VISITOR)

    for method in ("HEAD", "GET"):  # a scanner fetching the URL
        with urllib.request.urlopen(urllib.request.Request(link, method=method)) as response:
            assert response.status == 200
    scanner = devices("scanner")  # a scanner that runs the page's JavaScript, clicks nothing
    scanner.page.goto(link)
    scanner.page.wait_for_load_state("networkidle")
    assert scanner.page.url.endswith("/demo/verify")  # the token left the address bar

    laptop.land(link)

    laptop.signed_in_as(VISITOR)
    laptop.shows(["C9231328"])


def test_logging_out_everywhere_signs_the_other_device_out_on_its_next_request(devices, inbox):
    laptop, phone = devices("laptop").open(), devices("phone").open()
    laptop.ask_link(VISITOR)
    phone.land(inbox.link_for(VISITOR))
    phone.signed_in_as(VISITOR)
    laptop.ask_link(VISITOR)
    laptop.land(inbox.link_for(VISITOR, count=2))
    laptop.signed_in_as(VISITOR)

    laptop.page.click("#logout-all")
    laptop.signed_out()
    phone.heart("C9231328")  # its next request

    phone.signed_out()


def test_a_sign_in_link_sent_by_someone_else_asks_before_uploading_anything(devices, inbox, site):
    attacker, victim = devices("attacker").open(), devices("victim").open()
    attacker.ask_link("attacker@example.com")  # and mails the link to the victim
    victim.heart("C9231328")
    victim.heart("98970014")

    victim.land(inbox.link_for("attacker@example.com"), merge=False)

    victim.signed_in_as("attacker@example.com")
    assert victim.asked == ["Sign in as attacker@example.com and add this browser's 2 favourites?"]
    attacker.ask_link("attacker@example.com")
    attacker.land(inbox.link_for("attacker@example.com", count=2))
    attacker.signed_in_as("attacker@example.com")
    attacker.shows([])  # nothing of the victim's reached the attacker's account


def signed_in_pair(devices, inbox):
    """A laptop and a phone, both signed in as the visitor, both holding A and B."""
    laptop, phone = devices("laptop").open(), devices("phone").open()
    laptop.heart("C9231328")
    laptop.heart("98970014")
    laptop.sign_in_by_code(inbox, VISITOR)
    phone.ask_link(VISITOR)
    phone.land(inbox.link_for(VISITOR, count=2))
    phone.signed_in_as(VISITOR)
    phone.shows(["C9231328", "98970014"])
    return laptop, phone


def test_an_unhearted_listing_stays_gone_when_a_stale_device_syncs(devices, inbox):
    laptop, phone = signed_in_pair(devices, inbox)
    phone.page.context.set_offline(True)  # the phone holds its old list

    laptop.heart("C9231328")  # un-heart on the laptop
    laptop.shows(["98970014"])
    phone.heart("98970200")  # the stale phone hearts something new, offline
    phone.page.context.set_offline(False)
    phone.page.evaluate("favsync.sync()")

    phone.shows(["98970014", "98970200"])  # C9231328 did not come back
    laptop.page.reload()
    laptop.shows(["98970014", "98970200"])


def test_an_expired_auth_token_is_renewed_silently_even_by_two_tabs_at_once(
        devices, inbox, start_server):
    # Auth tokens of one second: every request the page makes needs a refresh first.
    site = start_server(FAVSYNC_DEMO="true", FAVSYNC_AUTH_TOKEN_TTL="1",
                        FAVSYNC_MAGIC_LINK_URL="{server}/demo/verify?token={token}")
    laptop = devices("laptop", site.url).open()
    laptop.sign_in_by_code(inbox, VISITOR)
    second_tab = laptop.context.new_page()
    second_tab.goto(site.url + "/")
    refreshes = []
    laptop.context.on("request", lambda r: refreshes.append(r) if r.url.endswith("/token/refresh") else None)

    # Both tabs heart at once: both refresh with the same cookie at the same moment.
    laptop.page.evaluate("favsync.toggle('C9231328')")
    second_tab.evaluate("favsync.toggle('98970014')")

    laptop.shows(["C9231328", "98970014"])
    second_tab.wait_for_function("favsync.email() === 'visitor@example.com'")
    laptop.heart("98970200")  # and later requests still refresh fine
    laptop.shows(["C9231328", "98970014", "98970200"])
    second_tab.reload()
    second_tab.wait_for_function("favsync.list().length === 3 && favsync.email() !== null")
    assert len(refreshes) >= 3


def test_the_refresh_cookie_is_kept_and_signs_in_again_on_every_page(devices, inbox, site):
    laptop, phone = devices("laptop").open(), devices("phone").open()
    laptop.heart("C9231328")
    laptop.ask_link(VISITOR)

    phone.land(inbox.link_for(VISITOR))
    phone.signed_in_as(VISITOR)
    laptop.type_code(inbox.code_for(VISITOR))
    laptop.signed_in_as(VISITOR)
    laptop.shows(["C9231328"])

    # What the browser stored (Chromium's default settings: third-party cookies blocked).
    [cookie] = [c for c in laptop.context.cookies() if c["name"] == "favsync_refresh"]
    assert (cookie["secure"], cookie["httpOnly"]) == (True, True)
    assert cookie["sameSite"] == ("None" if site.cross_site else "Lax")
    laptop.page.reload()  # a new page: the auth token is gone, the cookie signs in again
    laptop.signed_in_as(VISITOR)
    laptop.heart("98970014")
    laptop.shows(["C9231328", "98970014"])
    phone.page.reload()
    phone.signed_in_as(VISITOR)
    phone.shows(["C9231328", "98970014"])


def test_a_sign_in_forced_on_the_browser_asks_before_uploading_anything(devices, inbox, site):
    victim, attacker = devices("victim").open(), devices("attacker").open()
    victim.heart("C9231328")
    victim.sign_in_by_code(inbox, VISITOR)
    attacker.ask_link("attacker@example.com")
    secret = inbox.secret_for("attacker@example.com")

    # A page elsewhere sends the victim's browser to the attacker's sign-in link (GET).
    victim.page.goto(f"{site.favsync_url}/api/v1/favorites/verify/{secret}")
    asked = []
    victim.page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    victim.open()  # the site's next page

    if site.cross_site:
        # The attacker's cookie went to favsync's own partition, not the site's.
        victim.signed_in_as(VISITOR)
        victim.shows(["C9231328"])
        assert asked == []
    else:  # the cookie is now the attacker's: the page asks before uploading
        victim.signed_in_as("attacker@example.com")
        victim.page.wait_for_function("favsync.list().length === 0")
        assert asked == ["Sign in as attacker@example.com and add this browser's 1 favourites?"]
    attacker.ask_link("attacker@example.com")
    attacker.land(inbox.link_for("attacker@example.com", count=2))
    attacker.shows([])  # nothing of the victim's reached the attacker's account

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

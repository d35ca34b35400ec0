"""Fixtures for the browser suite: real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, against gunicorn.

Run with `make test-browser`. Every scenario uses Chromium's default cookie
settings (third-party cookies blocked); a screenshot of each scenario's final
state is saved under .artifacts/browser/.
"""
from __future__ import annotations

import os
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from backends import ROOT
from conftest import free_port

CHROMIUM = os.environ.get("FAVSYNC_TEST_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium floods this closed network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / ".artifacts" / "browser"
WAIT_MS = 15_000


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no Chromium at {CHROMIUM}: apt-get install -y chromium "
                           "(never `playwright install`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


class Site:
    """Where the visitor's browser goes: the demo pages and, at `favsync_url`, favsync."""

    def __init__(self, url: str, favsync_url: str, cross_site: bool) -> None:
        self.url, self.favsync_url, self.cross_site = url, favsync_url, cross_site


class CrossSitePages:
    """The brokerage's site on an origin of its own (http://localhost:PORT): the demo's
    pages with favsync's full URL in them, so favsync (http://127.0.0.1:...) is another site."""

    def __init__(self, port: int) -> None:
        self.url = f"http://localhost:{port}"
        self.favsync_url = ""
        pages = self

        class Pages(BaseHTTPRequestHandler):
            def do_GET(self, body: bool = True):
                with urllib.request.urlopen(pages.favsync_url + self.path) as page:
                    html = page.read().decode().replace(
                        '"/api/v1/favorites', f'"{pages.favsync_url}/api/v1/favorites')
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                if body:
                    self.wfile.write(html.encode())

            def do_HEAD(self):
                self.do_GET(body=False)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Pages)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(params=["same-origin", "cross-site"])
def site(request, start_server):
    """favsync under gunicorn with its demo site; emailed links land on the demo's landing
    page. Cross-site, the pages are on another origin: CORS, SameSite=None, Partitioned."""
    if request.param == "same-origin":
        server = start_server(FAVSYNC_DEMO="true",
                              FAVSYNC_MAGIC_LINK_URL="{server}/demo/verify?token={token}")
        yield Site(server.url, server.url, cross_site=False)
        return
    pages = CrossSitePages(free_port())
    server = start_server(FAVSYNC_DEMO="true", FAVSYNC_CORS_ORIGINS=pages.url,
                          FAVSYNC_REFRESH_COOKIE_SAMESITE="None",
                          FAVSYNC_MAGIC_LINK_URL=f"{pages.url}/demo/verify?token={{token}}")
    pages.favsync_url = server.url
    yield Site(pages.url, server.url, cross_site=True)
    pages.server.shutdown()


class Device:
    """One browser profile (a context: its own cookies and localStorage) on one page of the site."""

    def __init__(self, browser, base: str, name: str) -> None:
        self.base, self.name = base, name
        self.context = browser.new_context()
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, path: str = "/") -> Device:
        self.page.goto(self.base + path)
        self.page.wait_for_function("window.favsync !== undefined")
        return self

    def heart(self, listing: str) -> None:
        self.page.click(f'favsync-heart[listing="{listing}"] button')

    def hearts(self) -> list[str]:
        return self.page.evaluate("favsync.list()")

    def shows(self, listings: list[str]) -> None:
        """Wait until the favourites panel lists exactly `listings` (in any order)."""
        self.page.wait_for_function(
            "expected => JSON.stringify([...document.querySelectorAll('#favorites li')]"
            ".map(li => li.textContent).sort()) === JSON.stringify(expected)",
            arg=sorted(listings),
        )

    def ask_link(self, email: str) -> None:
        self.page.fill("#email", email)
        self.page.click("#ask button")
        self.page.wait_for_selector("#code-form:not([hidden])")

    def type_code(self, code: str) -> None:
        self.page.fill("#code", code)
        self.page.click("#code-form button")

    def sign_in_by_code(self, inbox, email: str) -> None:
        """Ask for a sign-in email here and type its code, as the person does."""
        self.ask_link(email)
        self.type_code(inbox.code_for(email))
        self.signed_in_as(email)

    def signed_in_as(self, email: str) -> None:
        self.page.wait_for_function(
            "email => document.getElementById('who')?.textContent === `Signed in as ${email}`",
            arg=email)

    def signed_out(self) -> None:
        self.page.wait_for_function(
            "(document.getElementById('who')?.textContent || '').startsWith('Not signed in')")

    def land(self, link: str, *, merge: bool | None = None) -> None:
        """Open the emailed link and press Continue, as the person does.

        A link asked for in another browser makes the page ask before it adds
        this browser's hearts to the account: `merge` is the person's answer.
        """
        self.asked: list[str] = []

        def answer(dialog) -> None:
            self.asked.append(dialog.message)
            dialog.accept() if merge else dialog.dismiss()

        self.page.once("dialog", answer)
        self.page.goto(link)
        self.page.click("#continue")

    def status(self) -> str:
        return self.page.text_content("[role=status]")

    def screenshot(self, scenario: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=ARTIFACTS / f"{scenario}-{self.name}.png", full_page=True)


@pytest.fixture
def devices(browser, site, request):
    """Make Devices on the live site; screenshot each at the end of the scenario."""
    made: list[Device] = []

    def make(name: str, base: str | None = None) -> Device:
        device = Device(browser, base or site.url, name)
        made.append(device)
        return device

    yield make
    for device in made:
        device.screenshot(request.node.name)
        assert not device.errors, f"{device.name}: {device.errors}"
        device.context.close()

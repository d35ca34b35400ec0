"""Blueprints for the browser: favsync.js under the API prefix, and the demo site (debug only)."""
from __future__ import annotations

from importlib.resources import files

from flask import Blueprint, render_template, send_file, url_for

from .state import settings

STATIC = files("favsync") / "static" / "favsync"
CLIENT_MAX_AGE = 7 * 24 * 3600  # a week; the ETag makes a changed file win at once after that

client = Blueprint("frontend", __name__)
demo = Blueprint("demo", __name__, template_folder="templates")


@client.get("/client.js")
def client_js():
    """Serve favsync.js, the browser client (an ES module)."""
    response = send_file(
        STATIC / "favsync.js",
        mimetype="text/javascript",
        max_age=CLIENT_MAX_AGE,
        conditional=True,
        etag=True,
    )
    response.headers["Cache-Control"] = f"public, max-age={CLIENT_MAX_AGE}"
    return response


@demo.get("/")
def listings():
    """A small brokerage page: listings with hearts, sign-in by email, the favourites."""
    return render_template("favsync/demo/index.html", **_pages())


@demo.get("/demo/verify")
def landing():
    """Where the emailed link lands: sign in after a click, merge, go back."""
    return render_template("favsync/demo/verify.html", **_pages())


def _pages() -> dict:
    api = url_for("favsync.frontend.client_js").removesuffix("/client.js")
    return {"api": api, "client_js": f"{api}/client.js", "listings": DEMO_LISTINGS,
            "cookie_path": settings().refresh_cookie_path}


DEMO_LISTINGS = [
    ("C9231328", "12 Lakeshore Road", "$475,000", "3 bd · 2 ba"),
    ("98970014", "7 Birch Crescent", "$629,900", "4 bd · 3 ba"),
    ("98970015", "301-88 Harbour St", "$389,000", "1 bd · 1 ba"),
    ("98970171", "45 Maple Grove", "$812,000", "5 bd · 4 ba"),
    ("98970200", "9 Orchard Lane", "$545,500", "3 bd · 3 ba"),
    ("N7812345", "220 King St W #1204", "$699,000", "2 bd · 2 ba"),
]

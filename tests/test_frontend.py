"""favsync.js and the demo site, as served (the browser behaviour is in tests/browser)."""
from conftest import API


def test_the_client_is_served_with_an_etag_and_long_caching(client):
    response = client.get(f"{API}/client.js")

    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert "export function createFavSync" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "public, max-age=604800"
    again = client.get(f"{API}/client.js", headers={"If-None-Match": response.headers["ETag"]})
    assert (again.status_code, again.data) == (304, b"")


def test_the_demo_site_is_served_in_debug_only(make_app):
    production = make_app().test_client()  # testing, not debug
    debug = make_app(DEBUG=True).test_client()
    switched_on = make_app(FAVSYNC_DEMO="true").test_client()

    assert production.get("/").status_code == 404
    page = debug.get("/")
    assert page.status_code == 200 and b"<favsync-heart listing=\"C9231328\">" in page.data
    assert f'import {{ createFavSync }} from "{API}/client.js"'.encode() in page.data
    assert switched_on.get("/demo/verify?token=x").status_code == 200


def test_in_the_demo_the_emailed_link_lands_on_its_landing_page(make_app, inbox):
    make_app(FAVSYNC_DEMO=True).test_client().post(f"{API}/magic-link", json={"email": "v@example.com"})

    assert "http://localhost/demo/verify?token=" in inbox.text_for("v@example.com")

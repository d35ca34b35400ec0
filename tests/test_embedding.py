"""favsync inside an existing Flask site: one call, and neither side breaks the other."""
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import request

import favsync
from favsync.config import ConfigError
from favsync.models import RefreshToken
from hostapp import Deal, Lead, create_host_app, db, favorites

from conftest import ROOT, Auth

SESSION_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture
def host(make_host):
    return make_host()


def log_in(client, inbox, address="visitor@example.com", prefix="/favs", base_url=None, **kwargs):
    asked = client.post(f"{prefix}/magic-link", json={"email": address}, base_url=base_url, **kwargs)
    assert asked.status_code == 202
    link = inbox.link_for(address)
    response = client.get(urlsplit(link).path, base_url=base_url)
    assert response.status_code == 200, response.json
    return link, response.json


def test_one_call_gives_the_host_the_whole_api(host, inbox):
    client = host.test_client()
    link, login = log_in(client, inbox, headers={"X-Session-ID": SESSION_ID})
    bearer = {"Authorization": f"Bearer {login['auth_token']}"}

    synced = client.post("/favs/sync", json={"favorites": ["C9231328", "98970014"]}, headers=bearer)
    deleted = client.delete("/favs/C9231328", headers=bearer)

    assert urlsplit(link).path.startswith("/favs/verify/")
    assert synced.json["favorites"] == ["C9231328", "98970014"]
    assert deleted.json["favorites"] == client.get("/favs", headers=bearer).json["favorites"] == ["98970014"]
    assert inbox.to("visitor@example.com")[0]["From"] == "Lakeside Homes <hello@lakeside.example>"


def test_the_site_overrides_the_email_text_and_keeps_favsyncs_html(host, inbox):
    with host.app_context():
        db.session.execute(sa.text("UPDATE favsync_brokerages SET name = 'Lakeside Homes'"))
        db.session.commit()
    link, _ = log_in(host.test_client(), inbox)

    [message] = inbox.to("visitor@example.com")
    text = message.get_body(("plain",)).get_content()
    code = re.search(r"type ([2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}) where", text).group(1)
    assert text.splitlines() == [
        "Hello from Lakeside Homes!",
        "",
        f"Open {link} to see your saved homes on this device too,",
        f"or type {code} where you asked. Both work once, for 15 minutes.",
    ]
    assert "Sign in to Lakeside Homes</a>" in message.get_body(("html",)).get_content()


def test_favsync_uses_the_hosts_database_and_mail(host):
    assert host.extensions["favsync"].db is db
    with host.app_context():
        assert host.extensions["favsync"].mailer.flask_mail() is host.extensions["mail"]
        tables = set(sa.inspect(db.engine).get_table_names())
    assert {"listings", "leads", "favsync_clients", "favsync_favorites"} <= tables


def test_a_change_of_favourites_is_in_a_transaction_the_sites_session_events_see(host, inbox):
    # A site's after_begin may set a tenant or role (SET LOCAL) for row-level
    # security: favsync's writes go through the site's session, never beside it.
    client = host.test_client()
    _, login = log_in(client, inbox)
    bearer = {"Authorization": f"Bearer {login['auth_token']}"}
    begun = []

    def on_begin(session, transaction, connection):
        begun.append(connection)

    with host.app_context():
        sa.event.listen(db.session, "after_begin", on_begin)
    try:
        synced = client.post("/favs/sync", json={"favorites": ["C9231328"]}, headers=bearer)
        deleted = client.delete("/favs/C9231328", headers=bearer)
    finally:
        with host.app_context():
            sa.event.remove(db.session, "after_begin", on_begin)

    assert synced.json["favorites"] == ["C9231328"] and deleted.json["favorites"] == []
    assert len(begun) == 2  # the sync's write and the removal's, each in the site's session


@pytest.mark.parametrize("mail_first", [True, False], ids=["mail-first", "mail-after"])
@pytest.mark.parametrize("mode", [{}, {"TESTING": True}, {"DEBUG": True}],
                         ids=["production", "testing", "debug"])
def test_the_hosts_flask_mail_sends_whichever_is_initialised_first(make_host, inbox, mail_first,
                                                                   mode):
    client = make_host(**mode, mail_first=mail_first).test_client()

    log_in(client, inbox)

    [message] = inbox.to("visitor@example.com")
    assert message["From"] == "Lakeside Homes <hello@lakeside.example>"


def test_without_any_mail_setting_start_up_says_what_to_do(host_config):
    del host_config["MAIL_SERVER"]  # Flask-Mail would default to 127.0.0.1 once initialised

    with pytest.raises(ConfigError) as refused:
        create_host_app(host_config, mail_first=False)

    assert "Set FAVSYNC_MAIL_SERVER, or set the site's MAIL_SERVER" in str(refused.value)


def test_the_host_hears_about_new_leads(host, inbox):
    log_in(host.test_client(), inbox, headers={"X-Session-ID": SESSION_ID})

    with host.app_context():
        leads = db.session.execute(sa.select(Lead.email, Lead.session_id)).all()
    assert leads == [("visitor@example.com", SESSION_ID)]


def test_a_returning_visitor_is_not_a_new_lead(host, inbox):
    client = host.test_client()
    log_in(client, inbox, headers={"X-Session-ID": SESSION_ID})
    log_in(client, inbox)  # later, from another device

    with host.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead)) == 1


def test_a_failing_host_hook_does_not_break_the_login(host, inbox, caplog):
    with host.app_context():
        Lead.__table__.drop(db.engine)  # the CRM hook will fail

    link, login = log_in(host.test_client(), inbox)

    assert login["success"] is True
    assert "a favsync.client-verified receiver failed" in caplog.text


def test_a_host_page_sees_the_visitor_by_the_refresh_cookie_without_rotating_it(make_host, inbox):
    app = make_host(FAVSYNC_REFRESH_COOKIE_PATH="/")  # the site's pages get the cookie too
    client = app.test_client()
    _, login = log_in(client, inbox)
    client.post("/favs/sync", json={"favorites": ["C9231328", "98970014"]},
                headers={"Authorization": f"Bearer {login['auth_token']}"})
    cookie = client.get_cookie("favsync_refresh")  # as the server set it, sent back by the client

    page = client.get("/saved-homes")

    assert cookie.path == "/"
    assert page.data == b"<p>visitor@example.com: C9231328 98970014</p>"
    assert client.get_cookie("favsync_refresh").value == cookie.value
    with app.app_context():
        assert db.session.scalar(sa.select(RefreshToken.rotated_at)) is None
    assert client.post("/favs/token/refresh", json={}).status_code == 200  # still the live cookie


def test_by_default_only_favsyncs_paths_get_the_cookie_and_a_page_needs_the_token(host, inbox):
    client = host.test_client()
    _, login = log_in(client, inbox)

    signed_out = client.get("/saved-homes")
    by_token = client.get("/saved-homes", headers={"Authorization": f"Bearer {login['auth_token']}"})

    assert client.get_cookie("favsync_refresh", path="/favs") is not None
    assert signed_out.data == b"<p>Sign in to see your saved homes.</p>"
    assert by_token.data == b"<p>visitor@example.com: </p>"


def seed_login(host, inbox, deal_id=None):
    """Sign the visitor in on the site by seed 002's login; its answer."""
    client = host.test_client()
    Auth(client, inbox, prefix="/favs").request_link()
    code = inbox.secret_for("visitor@example.com")
    return client.post("/api/auth/magic-link/verify", json={"code": code, "deal_id": deal_id})


def test_the_sites_hooks_fill_in_seed_002s_login(host, inbox):
    with host.app_context():
        db.session.add_all([Deal(id="D-7", buyer_email="visitor@example.com", buyer_name="Vera Visitor"),
                            Deal(id="D-8", buyer_email="someone@example.com", buyer_name="Someone")])
        db.session.commit()

    own = seed_login(host, inbox, deal_id="D-7").json
    other = seed_login(host, inbox, deal_id="D-8").json

    assert own["user"]["display_name"] == "Vera Visitor"
    assert own["user"]["avatar_url"] == f"https://lakeside.example/avatars/{own['user']['id']}.png"
    assert own["has_deals"] is True and len(own["matomo_visitor_id"]) == 16
    assert own["redirect_deal_id"] == "D-7"
    assert other["redirect_deal_id"] is None  # not the visitor's deal


def test_failing_hooks_leave_the_safe_defaults(host, inbox, monkeypatch, caplog):
    def broken(**extra):
        raise RuntimeError("a host bug")

    monkeypatch.setattr(favorites.hooks, "profile", broken)
    monkeypatch.setattr(favorites.hooks, "deal_access", broken)

    response = seed_login(host, inbox, deal_id="D-7")

    assert response.status_code == 200
    assert response.json["user"]["display_name"] == "visitor"
    assert (response.json["has_deals"], response.json["matomo_visitor_id"]) == (False, None)
    assert response.json["redirect_deal_id"] is None
    assert "the broken hook failed" in caplog.text


def test_a_hook_answering_something_else_is_ignored(host, inbox, monkeypatch):
    monkeypatch.setattr(favorites.hooks, "profile", lambda **extra: {"display_name": "Dict"})
    monkeypatch.setattr(favorites.hooks, "deal_access", lambda **extra: "yes")

    body = seed_login(host, inbox, deal_id="D-7").json

    assert body["user"]["display_name"] == "visitor" and body["redirect_deal_id"] is None


def test_host_pages_stay_html_and_favsync_errors_stay_json(host):
    client = host.test_client()

    assert client.get("/nowhere").data == b"<h1>Page not found</h1>"
    assert client.get("/boom").data == b"<h1>Sorry, our fault</h1>"
    assert client.post("/").data == b"<h1>Not like that</h1>"
    assert set(client.options("/").headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert client.options("/favs/sync").headers["Allow"] == "POST, DELETE, OPTIONS"
    for response, status, code in [
        (client.get("/favs/nowhere/at/all"), 404, "not_found"),
        (client.get("/favs/magic-link"), 405, "method_not_allowed"),
        (client.put("/favs"), 405, "method_not_allowed"),
        (client.get("/favs/"), 404, "not_found"),
        (client.open("/favs/sync", method="TRACE"), 405, "method_not_allowed"),
        (client.options("/favs/nowhere/at/all"), 404, "not_found"),
        (client.get("/favs"), 401, "unauthorized"),
        (client.post("/favs/magic-link", json={"email": "nope"}), 400, "validation_error"),
    ]:
        assert response.status_code == status
        assert response.json["error"]["code"] == code


@pytest.mark.parametrize("site_limit", ["config", "per request"])
def test_favsync_keeps_its_body_limit_beside_the_hosts_own(make_host, host_config, inbox, site_limit):
    host_config["FAVSYNC_MAX_BODY_BYTES"] = 2000
    if site_limit == "config":
        host_config["MAX_CONTENT_LENGTH"] = 100  # the site's, smaller than favsync's
    site = make_host()
    if site_limit == "per request":
        @site.before_request
        def small_bodies_only():
            request.max_content_length = 100

    client = site.test_client()
    _, login = log_in(client, inbox)
    bearer = {"Authorization": f"Bearer {login['auth_token']}"}
    ids = [f"L-{n:05d}" for n in range(60)]  # about 600 bytes of JSON

    synced = client.post("/favs/sync", json={"favorites": ids}, headers=bearer)
    too_large = client.post("/favs/sync", json={"favorites": ids * 5}, headers=bearer)

    assert synced.status_code == 200 and synced.json["favorites"] == ids
    assert too_large.status_code == 413
    assert too_large.json["error"]["code"] == "request_entity_too_large"


def test_a_host_can_mount_the_blueprint_itself(make_host, host_config, inbox):
    def mount(app):
        app.register_blueprint(favsync.blueprint, url_prefix="/api/saved-homes")

    host_config["FAVSYNC_MAGIC_LINK_URL"] = "https://lakeside.example/api/saved-homes/verify/{token}"
    client = make_host(mount=mount, register_blueprint=False).test_client()

    link, login = log_in(client, inbox, prefix="/api/saved-homes")

    assert urlsplit(link).path.startswith("/api/saved-homes/verify/")
    assert client.post("/favs/magic-link", json={"email": "x@example.com"}).status_code == 404


def test_a_host_can_mount_favsync_on_a_subdomain_without_a_prefix(make_host, host_config, inbox):
    def mount(app):
        app.register_blueprint(favsync.blueprint, subdomain="api")

    host_config.update(SERVER_NAME="lakeside.example", TRUSTED_HOSTS=[".lakeside.example"],
                       FAVSYNC_MAGIC_LINK_URL="https://api.lakeside.example/verify/{token}")
    app = make_host(mount=mount, register_blueprint=False, subdomain_matching=True)
    client, api = app.test_client(), "http://api.lakeside.example"

    link, login = log_in(client, inbox, prefix="", base_url=api)
    bearer = {"Authorization": f"Bearer {login['auth_token']}"}
    synced = client.post("/sync", json={"favorites": ["C9231328"]}, headers=bearer, base_url=api)
    listed = client.get("/", headers=bearer, base_url=api)

    assert link.startswith("https://api.lakeside.example/verify/")
    assert synced.json["favorites"] == listed.json["favorites"] == ["C9231328"]
    assert client.get_cookie("favsync_refresh", domain="api.lakeside.example").path == "/"
    assert client.post("/token/refresh", json={}, base_url=api).status_code == 200
    assert client.put("/", base_url=api).json["error"]["code"] == "method_not_allowed"
    assert client.get("/no/such/path", base_url=api).json["error"]["code"] == "not_found"
    assert client.get("/", base_url="http://lakeside.example").data == b"<h1>Lakeside Homes</h1>"


@pytest.fixture
def host_with_operations(make_host):
    # Built before the test runs: running migrations resets the root logger, and caplog with it.
    return make_host(operations=True)


def test_operations_are_the_hosts_choice(host_with_operations, host, caplog):
    caplog.set_level(logging.INFO, logger="favsync.requests")

    @host_with_operations.get("/own-request-id")
    def own_request_id():
        return "", 204, {"X-Request-ID": "the-sites-own"}

    with_operations = host_with_operations.test_client()
    without = host.test_client()

    health = with_operations.get("/healthz")
    ready = with_operations.get("/readyz")
    page = with_operations.get("/", headers={"X-Request-ID": "req-7"})

    assert health.json == {"status": "ok"}
    assert ready.json == {"status": "ok", "delivery": {"oldest_undelivered_seconds": None}}
    assert page.headers["X-Request-ID"] == "req-7"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert caplog.records[-1].getMessage().startswith("req-7 GET / 200 ")
    # The request's id replaces one the site's view set: one header, as logged.
    assert with_operations.get("/own-request-id", headers={"X-Request-ID": "req-8"}
                               ).headers.getlist("X-Request-ID") == ["req-8"]
    assert with_operations.get("/favs").headers["X-Request-ID"]
    assert without.get("/healthz").data == b"<h1>Page not found</h1>"
    assert "X-Request-ID" not in without.get("/favs").headers


def test_two_sites_in_one_process_keep_their_own_settings(make_host, inbox, backend):
    first = make_host(FAVSYNC_RATELIMIT_MAGIC_LINK_PER_EMAIL="1 per hour")
    with backend.scratch_database() as other_database:
        second = make_host(SQLALCHEMY_DATABASE_URI=other_database, **backend.ratelimit_storage(),
                           FAVSYNC_URL_PREFIX="/saved", FAVSYNC_MAX_FAVORITES=1)
        ask = {"json": {"email": "v@example.com"}}

        assert [first.test_client().post("/favs/magic-link", **ask).status_code for _ in range(2)] == [202, 429]
        assert [second.test_client().post("/saved/magic-link", **ask).status_code for _ in range(2)] == [202, 202]
        assert first.extensions["favsync"].settings.max_favorites == 500


def test_host_migrations_leave_favsync_tables_alone(host_config, tmp_path):
    app = create_host_app(host_config)
    host_migrations = str(tmp_path / "host_migrations")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["favsync", "db", "upgrade"]).exit_code == 0
    with app.app_context():
        with db.engine.begin() as connection:  # a table the site's own filter skips
            connection.execute(sa.text("CREATE TABLE spatial_ref_sys (srid INTEGER PRIMARY KEY)"))
        flask_migrate.init(directory=host_migrations)
        flask_migrate.migrate(directory=host_migrations, message="host tables")
        flask_migrate.upgrade(directory=host_migrations)
        flask_migrate.migrate(directory=host_migrations, message="nothing")
        tables = set(sa.inspect(db.engine).get_table_names())
        db.engine.dispose()

    [revision] = list(Path(host_migrations, "versions").glob("*.py"))
    assert "favsync" not in revision.read_text()
    assert "spatial_ref_sys" not in revision.read_text()
    assert "create_table('listings'" in revision.read_text()
    assert {"listings", "leads", "alembic_version", "favsync_alembic_version",
            "favsync_favorites"} <= tables


def test_a_pip_installed_favsync_migrates_a_host_without_this_repository(host_config, tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "wheel"), str(ROOT)],
        check=True, capture_output=True,
    )
    [wheel] = (tmp_path / "wheel").glob("favsync-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(tmp_path / "site"), str(wheel)],
        check=True, capture_output=True,
    )
    site = tmp_path / "site"
    host = tmp_path / "site-host"
    host.mkdir()
    (host / "app.py").write_text(
        "import favsync\n"
        "from flask import Flask\n"
        "from flask_sqlalchemy import SQLAlchemy\n"
        "db = SQLAlchemy()\n"
        "app = Flask(__name__)\n"
        f"app.config.update({host_config!r}, FAVSYNC_MAIL_SERVER='127.0.0.1')\n"
        "db.init_app(app)\n"
        "favsync.FavSync(app, db=db)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}

    result = subprocess.run(
        [sys.executable, "-c", "import favsync; print(favsync.__file__)"],
        cwd=host, env=env, capture_output=True, text=True, check=True,
    )
    upgrade = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "favsync", "db", "upgrade"],
        cwd=host, env=env, capture_output=True, text=True,
    )

    assert result.stdout.startswith(str(site))
    assert upgrade.returncode == 0, upgrade.stderr
    assert "Running upgrade  -> 0001" in upgrade.stderr
    engine = sa.create_engine(host_config["SQLALCHEMY_DATABASE_URI"])
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT name FROM favsync_brokerages")).scalar() == "favsync"
    engine.dispose()


def test_the_sites_development_server_logs_no_secret_of_favsyncs_urls(host, caplog):
    # A site's `flask run` is werkzeug's development server: a line per request, its URL whole.
    import threading
    import urllib.error
    import urllib.request

    from werkzeug.serving import make_server

    caplog.set_level(logging.INFO, logger="werkzeug")
    server = make_server("127.0.0.1", 0, host)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/favs/verify/pathSecret0123456789",
                                   timeout=10).close()
        except urllib.error.HTTPError:
            pass  # logged all the same
    finally:
        server.shutdown()

    assert "GET /favs/verify/*** HTTP/1.1" in caplog.text
    assert "pathSecret" not in caplog.text

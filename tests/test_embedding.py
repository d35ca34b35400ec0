"""favsync inside an existing Flask site: one call, and neither side breaks the other."""
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import flask_migrate
import pytest
import sqlalchemy as sa

import favsync
from hostapp import Deal, Lead, create_host_app, db, favorites

from conftest import ROOT, Auth, bearer, dispose, settings

SESSION_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture
def host(make_host):
    return make_host()


def test_one_call_gives_the_host_the_whole_api(host, inbox):
    client = host.test_client()
    login = Auth(client, inbox, prefix="/favs").login(headers={"X-Session-ID": SESSION_ID})
    headers = bearer(login["auth_token"])

    synced = client.post("/favs/sync", json={"favorites": ["C9231328", "98970014"]}, headers=headers)
    deleted = client.delete("/favs/C9231328", headers=headers)

    assert urlsplit(inbox.link_for("visitor@example.com")).path.startswith("/favs/verify/")
    assert synced.json["favorites"] == ["C9231328", "98970014"]
    assert deleted.json["favorites"] == ["98970014"]
    assert client.get("/favs", headers=headers).json["favorites"] == ["98970014"]
    assert inbox.to("visitor@example.com")[0]["From"] == "Lakeside Homes <hello@lakeside.example>"


def test_favsync_uses_the_hosts_database_and_mail(host):
    assert host.extensions["favsync"].db is db
    assert host.extensions["mail"] is host.extensions["favsync"].mailer._state
    with host.app_context():
        tables = set(sa.inspect(db.engine).get_table_names())
    assert {"listings", "leads", "favsync_clients", "favsync_favorites"} <= tables


def test_the_host_hears_about_new_leads(host, inbox):
    Auth(host.test_client(), inbox, prefix="/favs").login(headers={"X-Session-ID": SESSION_ID})

    with host.app_context():
        leads = db.session.execute(sa.select(Lead.email, Lead.session_id)).all()
    assert leads == [("visitor@example.com", SESSION_ID)]


def test_a_failing_host_hook_does_not_break_the_login(host, inbox, caplog):
    with host.app_context():
        Lead.__table__.drop(db.engine)  # the CRM hook will fail

    login = Auth(host.test_client(), inbox, prefix="/favs").login()

    assert login["success"] is True
    assert "a favsync.client-verified receiver failed" in caplog.text


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
    for response, status, code in [
        (client.get("/favs/nowhere/at/all"), 404, "not_found"),
        (client.get("/favs/magic-link"), 405, "method_not_allowed"),
        (client.put("/favs"), 405, "method_not_allowed"),
        (client.get("/favs/"), 404, "not_found"),
        (client.open("/favs/sync", method="TRACE"), 405, "method_not_allowed"),
        (client.get("/favs"), 401, "unauthorized"),
        (client.post("/favs/magic-link", json={"email": "nope"}), 400, "validation_error"),
    ]:
        assert response.status_code == status
        assert response.json["error"]["code"] == code


def test_a_host_can_mount_the_blueprint_itself(make_host, inbox):
    def mount(app):
        app.register_blueprint(favsync.blueprint, url_prefix="/api/saved-homes")

    client = make_host(
        mount=mount, register_blueprint=False,
        FAVSYNC_MAGIC_LINK_URL="https://lakeside.example/api/saved-homes/verify/{token}",
    ).test_client()

    Auth(client, inbox, prefix="/api/saved-homes").login()

    assert urlsplit(inbox.link_for("visitor@example.com")).path.startswith("/api/saved-homes/verify/")
    assert client.post("/favs/magic-link", json={"email": "x@example.com"}).status_code == 404


def test_two_sites_in_one_process_keep_their_own_settings(make_host, inbox, backend):
    first = make_host(FAVSYNC_RATELIMIT_MAGIC_LINK_PER_EMAIL="1 per hour")
    with backend.scratch_database() as other_database:
        second = make_host(SQLALCHEMY_DATABASE_URI=other_database, **backend.ratelimit_storage(),
                           FAVSYNC_URL_PREFIX="/saved", FAVSYNC_MAX_FAVORITES=1)
        on_first = Auth(first.test_client(), inbox, prefix="/favs")
        on_second = Auth(second.test_client(), inbox, prefix="/saved")

        assert [on_first.request_link("v@example.com").status_code for _ in range(2)] == [202, 429]
        assert [on_second.request_link("v@example.com").status_code for _ in range(2)] == [202, 202]
        assert settings(first).max_favorites == 500
        assert settings(second).max_favorites == 1
        dispose(second)  # before its database is dropped


def test_host_migrations_leave_favsync_tables_alone(host_config, tmp_path):
    app = create_host_app(host_config)
    host_migrations = str(tmp_path / "host_migrations")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["favsync", "db", "upgrade"]).exit_code == 0
    with app.app_context():
        flask_migrate.init(directory=host_migrations)
        flask_migrate.migrate(directory=host_migrations, message="host tables")
        flask_migrate.upgrade(directory=host_migrations)
        flask_migrate.migrate(directory=host_migrations, message="nothing")
        tables = set(sa.inspect(db.engine).get_table_names())
    dispose(app)

    [revision] = list(Path(host_migrations, "versions").glob("*.py"))
    assert "favsync" not in revision.read_text()
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

import flask_migrate
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from favsync import create_app
from favsync.database import Base

from conftest import MIGRATIONS, base_config

VERSION_TABLE = "favsync_alembic_version"


def schema_drift(app):
    with app.extensions["favsync"].db.engine.connect() as connection:
        return compare_metadata(
            MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}),
            Base.metadata,
        )


def test_upgrade_downgrade_upgrade_matches_the_models(backend):
    with backend.scratch_database() as database_uri:
        app = create_app(base_config(database_uri, port=25))
        check_round_trip(app)


def check_round_trip(app):
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS)
        flask_migrate.downgrade(directory=MIGRATIONS, revision="base")
        tables = sa.inspect(app.extensions["favsync"].db.engine).get_table_names()
        assert tables == ["favsync_alembic_version"]
        flask_migrate.upgrade(directory=MIGRATIONS)
        assert schema_drift(app) == []
        app.extensions["favsync"].db.engine.dispose()


def test_the_first_migration_creates_the_default_brokerage(app):
    with app.app_context():
        rows = app.extensions["favsync"].db.session.execute(
            sa.text("SELECT id, domain FROM favsync_brokerages")
        ).all()
    assert rows == [(1, None)]

"""The migrations build exactly the schema the models describe, both ways."""
import flask_migrate
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conftest import MIGRATIONS, Base, database, dispose, engine

VERSION_TABLE = "favsync_alembic_version"


def schema_drift(app):
    with engine(app).connect() as connection:
        return compare_metadata(
            MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}),
            Base.metadata,
        )


def test_upgrade_downgrade_upgrade_matches_the_models(backend, make_app):
    with backend.scratch_database() as database_uri:
        app = make_app(FAVSYNC_SQLALCHEMY_DATABASE_URI=database_uri)
        with app.app_context():
            flask_migrate.upgrade(directory=MIGRATIONS)
            flask_migrate.downgrade(directory=MIGRATIONS, revision="base")
            tables = sa.inspect(engine(app)).get_table_names()
            flask_migrate.upgrade(directory=MIGRATIONS)
            drift = schema_drift(app)
        dispose(app)  # before its database is dropped

    assert tables == ["favsync_alembic_version"]
    assert drift == []


def test_the_first_migration_creates_the_default_brokerage(app):
    with database(app) as session:
        brokerages = session.execute(sa.text("SELECT id, domain FROM favsync_brokerages")).all()

    assert brokerages == [(1, None)]

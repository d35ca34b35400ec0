"""Alembic environment for favsync's tables (run through Flask-Migrate)."""
import logging
from logging.config import fileConfig

from alembic import context

from favsync.database import Base, include_only_favsync
from favsync.state import state

config = context.config
if config.config_file_name:
    # Keep the app's loggers alive when migrations run inside a process (tests).
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

# favsync keeps its own version table, so its history never mixes with a host's.
VERSION_TABLE = "favsync_alembic_version"


def _engine():
    # favsync's database: its own, or the host's it was given.
    return state().db.engine


def _skip_empty_autogenerate(context, revision, directives):
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_offline():
    url = _engine().url.render_as_string(hide_password=False)
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            render_as_batch=engine.dialect.name == "sqlite",  # SQLite cannot ALTER most things
            compare_type=True,
            include_name=include_only_favsync,
            process_revision_directives=_skip_empty_autogenerate,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""The `flask favsync` command group."""
from datetime import timedelta

import click
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from flask.cli import AppGroup

from .database import MIGRATIONS_DIRECTORY, session, utcnow
from .state import settings
from .sync import purge_tombstones

favsync_cli = AppGroup("favsync", help="Manage favsync's brokerages and magic links.")


@favsync_cli.command("add-brokerage")
@click.option("--name", required=True, help="Shown in the subject of sign-in emails.")
@click.option("--domain", required=True, help="Host name whose visitors become its clients.")
def add_brokerage(name: str, domain: str) -> None:
    """Add a brokerage whose site is served at DOMAIN."""
    from .models import Brokerage

    brokerage = Brokerage(name=name, domain=domain.lower())
    session().add(brokerage)
    session().commit()
    click.echo(f"brokerage {brokerage.id}: {name} ({domain.lower()})")


@favsync_cli.command("purge")
@click.option("--days", default=7, show_default=True, help="Keep what ended more recently.")
def purge(days: int) -> None:
    """Delete magic links and refresh tokens that ended more than DAYS days ago, and
    tombstones of removed favourites older than FAVSYNC_TOMBSTONE_DAYS."""
    from .models import MagicLink, RefreshToken

    now = utcnow()
    cutoff = now - timedelta(days=days)
    links = session().execute(
        sa.delete(MagicLink).where(
            sa.or_(MagicLink.expires_at < cutoff, MagicLink.used_at < cutoff)
        )
    )
    tokens = session().execute(
        sa.delete(RefreshToken).where(
            sa.or_(
                RefreshToken.expires_at < cutoff,
                RefreshToken.rotated_at < cutoff,
                RefreshToken.revoked_at < cutoff,
            )
        )
    )
    tombstones, sync_sessions = purge_tombstones(now - timedelta(days=settings().tombstone_days))
    session().commit()
    click.echo(
        f"purged {links.rowcount} magic links, {tokens.rowcount} refresh tokens, "
        f"{tombstones} tombstones and {sync_sessions} sync sessions"
    )


@favsync_cli.group("db")
def db_cli() -> None:
    """Migrate favsync's tables (in favsync's database, or the host's)."""


def _alembic() -> Config:
    # favsync's migrations ship inside the package and keep their own version
    # table (favsync_alembic_version), so they never mix with a host's history.
    config = Config(f"{MIGRATIONS_DIRECTORY}/alembic.ini")
    config.set_main_option("script_location", MIGRATIONS_DIRECTORY)
    return config


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Create or upgrade favsync's tables."""
    command.upgrade(_alembic(), revision)


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Downgrade favsync's tables to REVISION ('base' removes them)."""
    command.downgrade(_alembic(), revision)


@db_cli.command("current")
def db_current() -> None:
    """Show favsync's current migration."""
    command.current(_alembic())

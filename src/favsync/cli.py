"""The `flask favsync` command group."""
import time
from datetime import timedelta

import click
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from flask.cli import AppGroup, with_appcontext

from .database import MIGRATIONS_DIRECTORY, session, utcnow
from .state import settings
from .sync import purge_tombstones

favsync_cli = AppGroup("favsync", help="Manage favsync's brokerages and magic links.")


@favsync_cli.group("brokerage")
def brokerage_cli() -> None:
    """List, add and rename brokerages (their name is in the subject of sign-in emails)."""


def _describe(brokerage) -> str:
    return f"brokerage {brokerage.id}: {brokerage.name} ({brokerage.domain or 'every other host'})"


@brokerage_cli.command("list")
def brokerage_list() -> None:
    """Show every brokerage, with the host whose visitors it takes."""
    from .models import Brokerage

    for brokerage in session().scalars(sa.select(Brokerage).order_by(Brokerage.id)):
        click.echo(_describe(brokerage))


@brokerage_cli.command("add")
@click.option("--name", required=True, help="Shown in the subject of sign-in emails.")
@click.option("--domain", required=True, help="Host name whose visitors become its clients.")
def brokerage_add(name: str, domain: str) -> None:
    """Add a brokerage whose site is served at DOMAIN."""
    from .models import Brokerage

    brokerage = Brokerage(name=name, domain=domain.lower())
    session().add(brokerage)
    try:
        session().commit()
    except sa.exc.IntegrityError:
        raise click.ClickException(f"a brokerage already serves {domain.lower()}") from None
    Brokerage.forget_hosts()  # other processes see it within BROKERAGE_CACHE_SECONDS
    click.echo(_describe(brokerage))


@brokerage_cli.command("rename")
@click.argument("brokerage_id", type=int)
@click.option("--name", required=True, help="The new name.")
def brokerage_rename(brokerage_id: int, name: str) -> None:
    """Rename a brokerage (1, the default, is named "favsync" at first)."""
    from .models import Brokerage

    brokerage = session().get(Brokerage, brokerage_id)
    if brokerage is None:
        raise click.ClickException(f"there is no brokerage {brokerage_id}; see: brokerage list")
    brokerage.name = name
    session().commit()
    Brokerage.forget_hosts()  # other processes see it within BROKERAGE_CACHE_SECONDS
    click.echo(_describe(brokerage))


# The command's earlier name, kept for scripts and crontabs.
favsync_cli.add_command(
    click.Command(
        "add-brokerage",
        params=brokerage_add.params,
        callback=brokerage_add.callback,
        help="The same as `brokerage add`.",
        hidden=True,
    )
)


@favsync_cli.command("purge")
@click.option("--days", default=7, show_default=True, help="Keep what ended more recently.")
def purge(days: int) -> None:
    """Delete magic links, refresh tokens and outbox messages that ended more than DAYS
    days ago, and tombstones of removed favourites older than FAVSYNC_TOMBSTONE_DAYS."""
    from . import outbox
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
    messages = outbox.purge(cutoff)
    session().commit()
    click.echo(
        f"purged {links.rowcount} magic links, {tokens.rowcount} refresh tokens, "
        f"{tombstones} tombstones, {sync_sessions} sync sessions and {messages} outbox messages"
    )


@favsync_cli.command("deliver")
@click.option("--loop", is_flag=True, help="Keep delivering, every FAVSYNC_SWEEP_INTERVAL seconds.")
def deliver(loop: bool) -> None:
    """Deliver every due email and webhook in the outbox (for cron, or with --loop)."""
    from . import outbox
    from .state import settings

    while True:
        tried = outbox.deliver()
        if tried or not loop:  # a quiet loop prints nothing
            click.echo(f"delivered or retried {tried} outbox messages")
        if not loop:
            return
        time.sleep(settings().sweep_interval)


@favsync_cli.group("outbox", invoke_without_command=True)
@click.pass_context
@with_appcontext  # a group's own callback does not get the app context by itself
def outbox_cli(context: click.Context) -> None:
    """Show the outbox: messages by status and the age of the oldest undelivered one."""
    if context.invoked_subcommand is not None:
        return
    from . import outbox

    for status, count in outbox.counts().items():
        click.echo(f"{status:8} {count}")
    age = outbox.oldest_queued_age()
    click.echo("oldest undelivered: " + ("none" if age is None else f"{age:.0f} s"))


@outbox_cli.command("retry")
@click.option("--failed", is_flag=True, required=True, help="Queue every failed message again.")
def outbox_retry(failed: bool) -> None:
    """Queue failed messages again, from their first attempt."""
    from . import outbox

    click.echo(f"queued {outbox.retry_failed()} failed messages again")


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


# -- agent messages: API keys and agents --------------------------------------------

def _brokerage_id(id_or_name: str) -> int:
    from .models import Brokerage

    found = Brokerage.find(id_or_name)
    if not found:
        raise click.BadParameter(f"no brokerage has the id or name {id_or_name!r}", param_hint="--brokerage")
    if len(found) > 1:
        raise click.BadParameter(f"several brokerages are named {id_or_name!r}; give its id",
                                 param_hint="--brokerage")
    return found[0].id


@favsync_cli.group("api-key")
def api_key_cli() -> None:
    """Keys that brokerage servers send (X-API-Key) to the messages API."""


@api_key_cli.command("create")
@click.option("--brokerage", required=True, help="The brokerage's id or name.")
@click.option("--label", help="What the key is for, shown by `api-key list`.")
def api_key_create(brokerage: str, label: str | None) -> None:
    """Print a new API key for a brokerage (shown this once; only its digest is kept)."""
    from . import apikeys

    click.echo(apikeys.create(_brokerage_id(brokerage), label))


@api_key_cli.command("list")
def api_key_list() -> None:
    """List the API keys (never the keys themselves)."""
    from . import apikeys

    for key in apikeys.listed():
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "live"
        click.echo(f"{key.id}\t{key.brokerage}\t{key.label or '-'}\t"
                   f"created {key.created_at:%Y-%m-%d %H:%M}\t{state}")


@api_key_cli.command("revoke")
@click.argument("key_id", type=int)
def api_key_revoke(key_id: int) -> None:
    """Revoke the API key KEY_ID (as `api-key list` numbers them): it stops working at once."""
    from . import apikeys

    if not apikeys.revoke(key_id):
        raise click.ClickException(f"there is no live API key {key_id}")
    click.echo(f"revoked API key {key_id}")


@favsync_cli.group("agent")
def agent_cli() -> None:
    """A brokerage's agents, who send messages and alerts."""


@agent_cli.command("add")
@click.option("--brokerage", required=True, help="The brokerage's id or name.")
@click.option("--name", required=True, help="Signs the agent's messages.")
@click.option("--email", required=True, help="Where clients' replies go.")
@click.option("--default", "default", is_flag=True,
              help="Send alerts to clients without an agent (replaces the previous default).")
def agent_add(brokerage: str, name: str, email: str, default: bool) -> None:
    """Add an agent to a brokerage and print its id."""
    from pydantic import TypeAdapter, ValidationError

    from . import agents
    from .schemas import AgentName, Email

    try:
        name = TypeAdapter(AgentName).validate_python(name)
        email = TypeAdapter(Email).validate_python(email)
    except ValidationError as exc:
        raise click.BadParameter(exc.errors()[0]["msg"]) from None
    click.echo(agents.add(_brokerage_id(brokerage), name, email, default=default))

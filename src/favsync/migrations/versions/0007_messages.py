"""Agent messages and listing alerts (seed 001): agents, API keys, messages, listing events.

Clients gain an assigned agent and an alerts flag; favourites are indexed by listing
for the alert fan-out.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "favsync_agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brokerage_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", Timestamp, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brokerage_id"], ["favsync_brokerages.id"],
            name=op.f("fk_favsync_agents_brokerage_id_favsync_brokerages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favsync_agents")),
    )
    op.create_index(
        "ix_favsync_agents_default", "favsync_agents", ["brokerage_id"], unique=True,
        sqlite_where=sa.text("is_default"), postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "favsync_api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brokerage_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("created_at", Timestamp, server_default=sa.func.now(), nullable=False),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["brokerage_id"], ["favsync_brokerages.id"],
            name=op.f("fk_favsync_api_keys_brokerage_id_favsync_brokerages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favsync_api_keys")),
        sa.UniqueConstraint("digest", name=op.f("uq_favsync_api_keys_digest")),
    )
    # Never recreated on SQLite: dropping the old clients table would cascade to their
    # favourites, refresh tokens and sessions (so agent_id has no foreign key either).
    with op.batch_alter_table("favsync_clients", recreate="never") as batch:
        batch.add_column(sa.Column("agent_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("alerts", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.create_table(
        "favsync_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brokerage_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("schedule_at", Timestamp, nullable=True),
        sa.Column("outbox_uid", sa.String(length=36), nullable=True),
        sa.Column("delivered", sa.String(length=16), nullable=True),
        sa.Column("sent_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, server_default=sa.func.now(), nullable=False),
        sa.Column("clicks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_clicked_at", Timestamp, nullable=True),
        sa.Column("last_clicked_at", Timestamp, nullable=True),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["favsync_agents.id"],
            name=op.f("fk_favsync_messages_agent_id_favsync_agents"),
        ),
        sa.ForeignKeyConstraint(
            ["brokerage_id"], ["favsync_brokerages.id"],
            name=op.f("fk_favsync_messages_brokerage_id_favsync_brokerages"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["favsync_clients.id"],
            name=op.f("fk_favsync_messages_client_id_favsync_clients"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["outbox_uid"], ["favsync_outbox.uid"],
            name=op.f("fk_favsync_messages_outbox_uid_favsync_outbox"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favsync_messages")),
        sa.UniqueConstraint("outbox_uid", name=op.f("uq_favsync_messages_outbox_uid")),
        sa.UniqueConstraint("token", name=op.f("uq_favsync_messages_token")),
    )
    op.create_index(op.f("ix_favsync_messages_brokerage_id"), "favsync_messages", ["brokerage_id"])
    op.create_index(op.f("ix_favsync_messages_client_id"), "favsync_messages", ["client_id"])
    op.create_table(
        "favsync_listing_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brokerage_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("listing_id", sa.String(length=50), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("created_at", Timestamp, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brokerage_id"], ["favsync_brokerages.id"],
            name=op.f("fk_favsync_listing_events_brokerage_id_favsync_brokerages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favsync_listing_events")),
        sa.UniqueConstraint(
            "brokerage_id", "event_id", name=op.f("uq_favsync_listing_events_brokerage_id_event_id")
        ),
    )
    op.create_index(op.f("ix_favsync_favorites_listing_id"), "favsync_favorites", ["listing_id"])


def downgrade():
    op.drop_index(op.f("ix_favsync_favorites_listing_id"), table_name="favsync_favorites")
    op.drop_table("favsync_listing_events")
    op.drop_index(op.f("ix_favsync_messages_client_id"), table_name="favsync_messages")
    op.drop_index(op.f("ix_favsync_messages_brokerage_id"), table_name="favsync_messages")
    op.drop_table("favsync_messages")
    with op.batch_alter_table("favsync_clients", recreate="never") as batch:
        batch.drop_column("alerts")
        batch.drop_column("agent_id")
    op.drop_table("favsync_api_keys")
    op.drop_index("ix_favsync_agents_default", table_name="favsync_agents")
    op.drop_table("favsync_agents")

"""Initial schema: brokerages, clients, magic links, favourites; the default brokerage.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade():
    brokerages = op.create_table(
        "favsync_brokerages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("created_at", Timestamp, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favsync_brokerages")),
        sa.UniqueConstraint("domain", name=op.f("uq_favsync_brokerages_domain")),
    )
    op.create_table(
        "favsync_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brokerage_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("created_at", Timestamp, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brokerage_id"], ["favsync_brokerages.id"],
            name=op.f("fk_favsync_clients_brokerage_id_favsync_brokerages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favsync_clients")),
        sa.UniqueConstraint(
            "brokerage_id", "email", name=op.f("uq_favsync_clients_brokerage_id_email")
        ),
    )
    op.create_table(
        "favsync_favorites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("listing_id", sa.String(length=50), nullable=False),
        sa.Column("created_at", Timestamp, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["favsync_clients.id"],
            name=op.f("fk_favsync_favorites_client_id_favsync_clients"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favsync_favorites")),
        sa.UniqueConstraint(
            "client_id", "listing_id", name=op.f("uq_favsync_favorites_client_id_listing_id")
        ),
    )
    op.create_table(
        "favsync_magic_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brokerage_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("used_at", Timestamp, nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("created_at", Timestamp, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brokerage_id"], ["favsync_brokerages.id"],
            name=op.f("fk_favsync_magic_links_brokerage_id_favsync_brokerages"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["favsync_clients.id"],
            name=op.f("fk_favsync_magic_links_client_id_favsync_clients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favsync_magic_links")),
        sa.UniqueConstraint("token", name=op.f("uq_favsync_magic_links_token")),
    )
    op.create_index(
        op.f("ix_favsync_magic_links_email"), "favsync_magic_links", ["email"], unique=False
    )
    # A one-site install works without setup: clients of unknown hosts belong here.
    # Inserted without an explicit id so PostgreSQL's sequence stays in step (it gets 1).
    op.bulk_insert(brokerages, [{"name": "favsync", "domain": None}])


def downgrade():
    op.drop_index(op.f("ix_favsync_magic_links_email"), table_name="favsync_magic_links")
    op.drop_table("favsync_magic_links")
    op.drop_table("favsync_favorites")
    op.drop_table("favsync_clients")
    op.drop_table("favsync_brokerages")

"""Typed codes, stored redirects, wrong-code counts, refresh tokens, log-out-everywhere.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade():
    with op.batch_alter_table("favsync_magic_links") as batch:
        batch.add_column(sa.Column("code", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("next_path", sa.String(length=512), nullable=True))
        batch.add_column(
            sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("favsync_clients") as batch:
        batch.add_column(
            sa.Column("tokens_valid_after", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "favsync_refresh_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=36), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("created_at", Timestamp, server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("rotated_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["favsync_clients.id"],
            name=op.f("fk_favsync_refresh_tokens_client_id_favsync_clients"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favsync_refresh_tokens")),
        sa.UniqueConstraint("token", name=op.f("uq_favsync_refresh_tokens_token")),
    )
    op.create_index(
        op.f("ix_favsync_refresh_tokens_family"), "favsync_refresh_tokens", ["family"]
    )
    op.create_index(
        op.f("ix_favsync_refresh_tokens_client_id"), "favsync_refresh_tokens", ["client_id"]
    )


def downgrade():
    op.drop_index(op.f("ix_favsync_refresh_tokens_client_id"), table_name="favsync_refresh_tokens")
    op.drop_index(op.f("ix_favsync_refresh_tokens_family"), table_name="favsync_refresh_tokens")
    op.drop_table("favsync_refresh_tokens")
    with op.batch_alter_table("favsync_clients") as batch:
        batch.drop_column("tokens_valid_after")
    with op.batch_alter_table("favsync_magic_links") as batch:
        batch.drop_column("failed_attempts")
        batch.drop_column("next_path")
        batch.drop_column("code")

"""Favourites versions, tombstones, and the sync base of each browser session.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade():
    # Existing favourites become version 0 of their client: present since version 0.
    with op.batch_alter_table("favsync_favorites") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column("added_version", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("removed_at", Timestamp, nullable=True))
        batch.add_column(sa.Column("history", sa.Text(), server_default="0", nullable=False))
        batch.create_index("ix_favsync_favorites_client_id_version", ["client_id", "version"])
    with op.batch_alter_table("favsync_clients") as batch:
        batch.add_column(
            sa.Column("favorites_horizon", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "favsync_sync_sessions",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["favsync_clients.id"],
            name=op.f("fk_favsync_sync_sessions_client_id_favsync_clients"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "session_id", name=op.f("pk_favsync_sync_sessions")),
    )


def downgrade():
    op.drop_table("favsync_sync_sessions")
    # Not recreated on SQLite: dropping the old clients table would cascade to their rows.
    with op.batch_alter_table("favsync_clients", recreate="never") as batch:
        batch.drop_column("favorites_horizon")
    # Without the columns a tombstone would read as a favourite again.
    op.execute(sa.text("DELETE FROM favsync_favorites WHERE removed_at IS NOT NULL"))
    with op.batch_alter_table("favsync_favorites") as batch:
        batch.drop_index("ix_favsync_favorites_client_id_version")
        batch.drop_column("history")
        batch.drop_column("removed_at")
        batch.drop_column("added_version")
        batch.drop_column("version")

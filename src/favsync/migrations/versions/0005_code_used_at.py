"""The emailed link and the typed code are each single use, independently.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("favsync_magic_links") as batch:
        batch.add_column(sa.Column("code_used_at", sa.DateTime(timezone=True), nullable=True))
    # Until now a used link had used its code too.
    op.execute("UPDATE favsync_magic_links SET code_used_at = used_at WHERE used_at IS NOT NULL")


def downgrade():
    with op.batch_alter_table("favsync_magic_links") as batch:
        batch.drop_column("code_used_at")

"""Refresh families remember their sign-in, for FAVSYNC_REFRESH_ABSOLUTE_TTL.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade():
    with op.batch_alter_table("favsync_refresh_tokens") as batch:
        batch.add_column(sa.Column("family_started_at", Timestamp, nullable=True))
    # A family's earliest token still stored is the best record of its sign-in.
    op.execute(
        "UPDATE favsync_refresh_tokens SET family_started_at = ("
        "SELECT min(earliest.created_at) FROM favsync_refresh_tokens AS earliest"
        " WHERE earliest.family = favsync_refresh_tokens.family)"
    )
    with op.batch_alter_table("favsync_refresh_tokens") as batch:
        batch.alter_column("family_started_at", existing_type=Timestamp, nullable=False)


def downgrade():
    with op.batch_alter_table("favsync_refresh_tokens") as batch:
        batch.drop_column("family_started_at")

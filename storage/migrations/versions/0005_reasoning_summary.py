"""A summary of each answer's reasoning, for deployments that show a summary instead of the raw
reasoning (--reasoning-display summary).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN everywhere (SQLite too): no table copy, so the full-text triggers stay.
    op.add_column("messages", sa.Column("reasoning_summary", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite >= 3.35 drops a column in place (triggers kept)
        op.execute("ALTER TABLE messages DROP COLUMN reasoning_summary")
    else:
        op.drop_column("messages", "reasoning_summary")

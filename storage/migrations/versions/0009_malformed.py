"""Whether part of an answer's model output was not valid harmony (the parser stays tolerant and shows what
it could read; the page and the share page then say so). Unknown (NULL) for answers stored before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite too): no table copy, so the full-text triggers stay.
    op.add_column("messages", sa.Column("malformed", sa.Boolean(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite >= 3.35 drops a column in place (triggers kept)
        op.execute("ALTER TABLE messages DROP COLUMN malformed")
    else:
        op.drop_column("messages", "malformed")

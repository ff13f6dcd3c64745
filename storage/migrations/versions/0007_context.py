"""How much of the model's context each answer used, and how many of the earliest messages were left out
of it (a conversation longer than the window keeps working; the page says what the model did not see).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ("context_tokens", "context_window", "left_out")


def upgrade() -> None:
    # Plain ADD COLUMNs (SQLite too): no table copy, so the full-text triggers stay.
    for name in COLUMNS:
        op.add_column("messages", sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        if op.get_bind().dialect.name == "sqlite":  # SQLite >= 3.35 drops a column in place (triggers kept)
            op.execute(f"ALTER TABLE messages DROP COLUMN {name}")
        else:
            op.drop_column("messages", name)

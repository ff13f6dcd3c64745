"""Share links: read-only snapshots of a conversation behind an unguessable token.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shares",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("conversation_id", sa.String(32),
                  sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("include_reasoning", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("expires", sa.DateTime()),
        sa.Column("revoked", sa.DateTime()),
    )
    op.create_index("ix_shares_owner_created", "shares", ["owner", "created"])


def downgrade() -> None:
    op.drop_index("ix_shares_owner_created", table_name="shares")
    op.drop_table("shares")

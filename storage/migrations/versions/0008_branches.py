"""Conversations become trees: each message names its parent, each conversation the last message of the
branch shown. Regenerate and edit then add a sibling instead of deleting what they replace. A conversation
stored before becomes a single path (each message's parent is the one before it); its leaf is its last.

No foreign keys on the two columns: SQLite would copy the whole table to add one, dropping the full-text
triggers, and a message is never deleted on its own (only with its conversation).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("parent_id", sa.Integer(), nullable=True))
    op.add_column("conversations", sa.Column("leaf_id", sa.Integer(), nullable=True))
    op.execute("""UPDATE messages SET parent_id = (
                    SELECT p.id FROM messages p WHERE p.conversation_id = messages.conversation_id
                    AND p.position < messages.position ORDER BY p.position DESC LIMIT 1)""")
    op.execute("""UPDATE conversations SET leaf_id = (
                    SELECT m.id FROM messages m WHERE m.conversation_id = conversations.id
                    ORDER BY m.position DESC LIMIT 1)""")


def downgrade() -> None:
    # The schema before knows one line per conversation: keep the branch shown, drop the others.
    op.execute("""WITH RECURSIVE shown(id) AS (
                    SELECT leaf_id FROM conversations WHERE leaf_id IS NOT NULL
                    UNION ALL SELECT m.parent_id FROM messages m JOIN shown ON m.id = shown.id
                    WHERE m.parent_id IS NOT NULL)
                  DELETE FROM messages WHERE id NOT IN (SELECT id FROM shown)
                  AND conversation_id IN (SELECT id FROM conversations WHERE leaf_id IS NOT NULL)""")
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, name in (("conversations", "leaf_id"), ("messages", "parent_id")):
        if sqlite:  # SQLite >= 3.35 drops a column in place (triggers kept)
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
        else:
            op.drop_column(table, name)

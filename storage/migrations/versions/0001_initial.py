"""Initial schema: conversations, messages, and full-text search on SQLite.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# FTS5 index over messages, kept in sync by triggers (external content table).
FTS_SQL = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5(content, reasoning, content='messages', content_rowid='id')",
    """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
         INSERT INTO messages_fts(rowid, content, reasoning) VALUES (new.id, new.content, new.reasoning);
       END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
         INSERT INTO messages_fts(messages_fts, rowid, content, reasoning)
         VALUES ('delete', old.id, old.content, old.reasoning);
       END""",
    """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, reasoning ON messages BEGIN
         INSERT INTO messages_fts(messages_fts, rowid, content, reasoning)
         VALUES ('delete', old.id, old.content, old.reasoning);
         INSERT INTO messages_fts(rowid, content, reasoning) VALUES (new.id, new.content, new.reasoning);
       END""",
]


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
    )
    op.create_index("ix_conversations_owner_updated", "conversations", ["owner", "updated"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(32),
                  sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=False),
        sa.Column("trace", sa.Text(), nullable=False),
        sa.Column("harmony", sa.Text(), nullable=False),
        sa.Column("effort", sa.String(8)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("stop_reason", sa.String(16)),
        sa.Column("reasoning_tokens", sa.Integer()),
        sa.Column("answer_tokens", sa.Integer()),
        sa.Column("ttft", sa.Float()),
        sa.Column("reasoning_time", sa.Float()),
        sa.Column("tokens_per_s", sa.Float()),
        sa.Column("created", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_messages_conversation_position", "messages", ["conversation_id", "position"], unique=True)
    op.create_index("ix_messages_status", "messages", ["status"])
    if op.get_bind().dialect.name == "sqlite":
        for statement in FTS_SQL:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS messages_fts")
    op.drop_table("messages")
    op.drop_table("conversations")

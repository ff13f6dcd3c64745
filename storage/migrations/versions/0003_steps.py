"""Agent steps: searchable tool text per message, and the browser tool's local documents.

A turn's steps (reasoning, preambles, tool calls, tool results) stay one ordered JSON list in
`messages.trace`; `messages.tools_text` holds the plain text of its tool calls and results so
search covers them, filled here from the calls already stored. On SQLite the full-text index is
rebuilt with that column. `documents` holds the folder the browser tool searches (--browser-docs).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_FTS = ("content", "reasoning")
NEW_FTS = ("content", "reasoning", "tools_text")


def fts_sql(columns: tuple[str, ...]) -> list[str]:
    cols, new = ", ".join(columns), ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    return [
        f"CREATE VIRTUAL TABLE messages_fts USING fts5({cols}, content='messages', content_rowid='id')",
        f"""CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
             INSERT INTO messages_fts(rowid, {cols}) VALUES (new.id, {new}); END""",
        f"""CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
             INSERT INTO messages_fts(messages_fts, rowid, {cols}) VALUES ('delete', old.id, {old}); END""",
        f"""CREATE TRIGGER messages_fts_update AFTER UPDATE OF {cols} ON messages BEGIN
             INSERT INTO messages_fts(messages_fts, rowid, {cols}) VALUES ('delete', old.id, {old});
             INSERT INTO messages_fts(rowid, {cols}) VALUES (new.id, {new}); END""",
        "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
    ]


def drop_fts() -> None:
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS messages_fts_{trigger}")
    op.execute("DROP TABLE IF EXISTS messages_fts")


def tools_text(trace: str) -> str:
    """The same text storage.repository.tools_text makes (kept here: a migration must not change
    when the application code does)."""
    parts = []
    for entry in json.loads(trace or "[]"):
        if entry.get("kind") == "tool_call":
            parts.append(f"{entry.get('recipient', '')} {entry.get('arguments', '')}")
        elif entry.get("kind") == "tool_result":
            parts.append(entry.get("output", ""))
    return "\n".join(parts)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        drop_fts()
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("tools_text", sa.Text(), nullable=False, server_default=""))
    messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("trace", sa.Text),
                        sa.column("tools_text", sa.Text))
    bind = op.get_bind()
    rows = bind.execute(sa.select(messages.c.id, messages.c.trace).where(messages.c.trace != "[]")).all()
    for mid, trace in rows:
        text = tools_text(trace)
        if text:
            bind.execute(messages.update().where(messages.c.id == mid).values(tools_text=text))
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
    )
    op.create_index("ix_documents_source", "documents", ["source"], unique=True)
    if sqlite:
        for statement in fts_sql(NEW_FTS):
            op.execute(statement)
        op.execute("CREATE VIRTUAL TABLE documents_fts USING fts5(title, text, content='documents', "
                   "content_rowid='id')")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TABLE IF EXISTS documents_fts")
        drop_fts()
    op.drop_index("ix_documents_source", "documents")
    op.drop_table("documents")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("tools_text")
    if sqlite:
        for statement in fts_sql(OLD_FTS):
            op.execute(statement)

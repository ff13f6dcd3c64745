"""Rows written the way an older schema stores them, for the migration tests (what a database made by an
earlier release holds before it is upgraded)."""

from sqlalchemy import text


def old_conversation(conn, conversation_id: str, title: str = "Old") -> None:
    """alice's conversation, with the six columns every revision before 0008 has (named: 0008 adds a
    seventh, leaf_id, which stays empty here)."""
    conn.execute(text("INSERT INTO conversations (id, owner, title, created, updated, settings) VALUES "
                      "(:id, 'alice', :title, '2026-01-01 00:00:00', '2026-01-01 00:00:00', '{}')"),
                 {"id": conversation_id, "title": title})

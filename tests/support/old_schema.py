"""Rows written the way an older schema stores them, for the migration tests (what a database made by an
earlier release holds before it is upgraded)."""

from sqlalchemy import text


def old_conversation(conn, conversation_id: str, title: str = "Old") -> None:
    """alice's conversation, with the six columns every revision before 0008 has, in their order."""
    conn.execute(text("INSERT INTO conversations VALUES (:id, 'alice', :title, '2026-01-01 00:00:00', "
                      "'2026-01-01 00:00:00', '{}')"), {"id": conversation_id, "title": title})

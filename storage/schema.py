"""Tables: conversations, their messages (normalized, not a JSON blob per chat), share links,
the browser tool's documents, API keys, stored Responses API answers and the audit log.

The Alembic migrations under storage/migrations create exactly this schema;
a test compares the two.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.records import MessageStatus


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # secrets.token_hex(16)
    owner: Mapped[str] = mapped_column(String(200), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False, default="New chat")
    created: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)
    settings: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # JSON
    # the last message of the branch shown (storage/tree.py); None: no message yet (migration 0008)
    leaf_id: Mapped[int | None] = mapped_column(Integer)

    messages: Mapped[list["Message"]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Message.position",
    )

    __table_args__ = (Index("ix_conversations_owner_updated", "owner", "updated"),)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)  # the order written in, unique per conversation
    # the message this one follows (None: the first); siblings are the other answers or edits (migration 0008)
    parent_id: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16), nullable=False)  # user | assistant
    content: Mapped[str] = mapped_column(Text, nullable=False, default="")
    reasoning: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # --reasoning-display summary: a short summary the same model wrote of `reasoning` (what users see)
    reasoning_summary: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    # JSON, the turn's steps in order: reasoning (offsets into `reasoning`), preambles, tool calls, results
    trace: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    tools_text: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")  # searchable
    harmony: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON: harmony messages
    effort: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=MessageStatus.COMPLETE.value)
    error: Mapped[str | None] = mapped_column(Text)
    stop_reason: Mapped[str | None] = mapped_column(String(16))
    reasoning_tokens: Mapped[int | None] = mapped_column(Integer)
    answer_tokens: Mapped[int | None] = mapped_column(Integer)
    ttft: Mapped[float | None] = mapped_column(Float)
    reasoning_time: Mapped[float | None] = mapped_column(Float)
    tokens_per_s: Mapped[float | None] = mapped_column(Float)
    # the context the answer's last generation used (prompt and output) of what the engine holds, and how
    # many of the earliest messages were left out of its prompt to fit (migration 0007)
    context_tokens: Mapped[int | None] = mapped_column(Integer)
    context_window: Mapped[int | None] = mapped_column(Integer)
    left_out: Mapped[int | None] = mapped_column(Integer)
    malformed: Mapped[bool | None] = mapped_column(Boolean)  # part of the model's output was not harmony
    created: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")

    __table_args__ = (
        Index("ix_messages_conversation_position", "conversation_id", "position", unique=True),
        Index("ix_messages_status", "status"),
    )


class Share(Base):
    """A read-only snapshot of a conversation behind an unguessable link."""

    __tablename__ = "shares"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)  # secrets.token_urlsafe: 192 bits
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    owner: Mapped[str] = mapped_column(String(200), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    snapshot: Mapped[str] = mapped_column(Text, nullable=False)  # JSON: the messages as shared
    include_reasoning: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)
    expires: Mapped[dt.datetime | None] = mapped_column()  # None: never
    revoked: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (Index("ix_shares_owner_created", "owner", "created"),)


class Document(Base):
    """A file of the folder the browser tool searches (--browser-docs), as text."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(1000), nullable=False)  # path inside the folder
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)  # size and mtime: re-read when changed

    __table_args__ = (Index("ix_documents_source", "source", unique=True),)


class ApiResponse(Base):
    """A stored Responses API answer: the response object as the client got it, and where its exchange
    lives (a conversation of the owner, the answer message), so previous_response_id goes on from it."""

    __tablename__ = "api_responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # resp_ + 48 random hex digits
    owner: Mapped[str] = mapped_column(String(200), nullable=False)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), nullable=False)
    created: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)
    body: Mapped[str] = mapped_column(Text, nullable=False)  # JSON: the response object

    __table_args__ = (Index("ix_api_responses_owner", "owner"),)


class ApiKey(Base):
    """A key for the OpenAI-compatible API, owned by one user. Only its SHA-256 is kept: the key is
    shown once, when made (keys are 256 random bits, so a plain hash cannot be brute-forced)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(200), nullable=False)
    label: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    digest: Mapped[str] = mapped_column(String(64), nullable=False)  # sha256 hex of the whole key
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)  # its first characters, to tell keys apart
    created: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)
    last_used: Mapped[dt.datetime | None] = mapped_column()
    revoked: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (Index("ix_api_keys_digest", "digest", unique=True), Index("ix_api_keys_owner", "owner"))


class AuditEntry(Base):
    """One thing a user did, appended and never changed (only the retention setting removes old
    entries). No message text unless the deployment asks for it (--audit-content). No foreign key:
    an entry outlives the conversation it names."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)
    owner: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False, default="ok")
    conversation_id: Mapped[str | None] = mapped_column(String(32))
    effort: Mapped[str | None] = mapped_column(String(8))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # JSON: tool name, via, content...

    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_owner_at", "owner", "at"))

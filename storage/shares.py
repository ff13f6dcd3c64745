"""Share links: a read-only snapshot of a conversation behind an unguessable token.

The snapshot is taken when the link is made, so later messages are not shared,
and reasoning the owner chose not to share is never written into it. Reading a
share needs only the token; everything else is scoped to the owner.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets

from sqlalchemy import select

from core.config import DEFAULT_SHARE_EXPIRY, SHARE_LINK_EXPIRIES
from core.errors import LINK_GONE, InputError, NotFoundError
from core.records import MessageStatus, MessageView, SharedConversation, ShareLink
from core.trace import from_json, to_json
from storage.repository import MESSAGE_FIELDS, Repository
from storage.schema import Share, utcnow

EXPIRIES = dict(zip(SHARE_LINK_EXPIRIES, (dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(days=7), None)))
TOKEN_BYTES = 24  # 192 bits from secrets: links cannot be guessed or enumerated
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
REASONING_ONLY = ("reasoning", "reasoning_summary", "reasoning_time", "reasoning_tokens")


def _link(s: Share) -> ShareLink:
    return ShareLink(s.token, s.conversation_id, s.title, s.created.isoformat(),
                     s.expires.isoformat() if s.expires else None, s.include_reasoning)


def _active(s: Share, now: dt.datetime) -> bool:
    return s.revoked is None and (s.expires is None or s.expires > now)


def _carried(m: MessageView) -> dict:
    """What a message takes into a snapshot and back out into a copy (besides its role)."""
    return {k: v for k, v in m.__dict__.items() if k in MESSAGE_FIELDS or k in ("trace", "harmony")}


def _snapshot(messages: list[MessageView], include_reasoning: bool) -> list[dict]:
    out = []
    for m in messages:
        if m.status == MessageStatus.STREAMING:
            continue  # an answer still being written is not part of the snapshot
        row = {"role": m.role, **_carried(m)}
        row["trace"] = to_json(m.trace)
        if not include_reasoning:
            # harmony keeps the raw analysis messages, so it goes too
            row.update({k: None for k in REASONING_ONLY}, reasoning="", harmony=[])
        out.append(row)
    return out


class Shares:
    def __init__(self, repo: Repository):
        self.repo = repo

    def create(self, owner: str, conversation_id: str, expiry: str = DEFAULT_SHARE_EXPIRY,
               include_reasoning: bool = False, now: dt.datetime | None = None, view=None) -> ShareLink:
        """`view`: what may be shown of the messages (a function of the list; the reasoning policy)."""
        if expiry not in EXPIRIES:
            raise InputError(f"Choose an expiry among: {', '.join(EXPIRIES)}.")
        conv = self.repo.get(owner, conversation_id)  # NotFoundError unless it is the owner's
        if not conv.messages:
            raise InputError("This conversation is empty: send a message before sharing it.")
        now = now or utcnow()
        share = Share(token=secrets.token_urlsafe(TOKEN_BYTES), conversation_id=conv.id, owner=owner,
                      title=conv.title, include_reasoning=bool(include_reasoning), created=now,
                      snapshot=json.dumps(_snapshot(view(conv.messages) if view else conv.messages,
                                                    bool(include_reasoning))),
                      expires=now + EXPIRIES[expiry] if EXPIRIES[expiry] else None)
        with self.repo.writing() as s:
            s.add(share)
        return _link(share)

    def list(self, owner: str, now: dt.datetime | None = None) -> list[ShareLink]:
        """The owner's links that still work, newest first."""
        now = now or utcnow()
        with self.repo.session() as s:
            rows = s.scalars(select(Share).where(Share.owner == owner, Share.revoked.is_(None))
                             .order_by(Share.created.desc())).all()
            return [_link(r) for r in rows if _active(r, now)]

    def revoke(self, owner: str, token: str) -> None:
        with self.repo.writing() as s:
            share = s.get(Share, token) if isinstance(token, str) and TOKEN.match(token) else None
            if share is None or share.owner != owner:
                raise NotFoundError("This share link does not exist.")
            share.revoked = share.revoked or utcnow()

    def open(self, token: str, now: dt.datetime | None = None) -> SharedConversation:
        """The shared snapshot, for anyone holding the token; gone once revoked or expired."""
        if not isinstance(token, str) or not TOKEN.match(token):
            raise NotFoundError(LINK_GONE)
        with self.repo.session() as s:
            share = s.get(Share, token)
            if share is None or not _active(share, now or utcnow()):
                raise NotFoundError(LINK_GONE)
            messages = [MessageView(id=i, position=i, **{**m, "trace": from_json(m.get("trace"))})
                        for i, m in enumerate(json.loads(share.snapshot))]
            return SharedConversation(share.title, share.created.isoformat(), share.include_reasoning, messages)

    def copy(self, owner: str, token: str) -> str:
        """Copy a shared conversation into a new chat of `owner`'s; returns its id."""
        shared = self.open(token)
        conversation_id = self.repo.create_conversation(owner, shared.title)
        for m in shared.messages:
            fields = _carried(m)
            fields.pop("content")
            self.repo.add_message(owner, conversation_id, m.role, m.content, **fields)
        return conversation_id

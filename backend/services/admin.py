"""The admin view's data, for the users named in --admins only: usage per user over the last day,
the answers being written now, the worker's queue, the MCP servers' state and the latest audit entries. Plain data; the
page lays it out (ui/admin.py). Anyone else gets nothing (the check is here, not in the page)."""

from __future__ import annotations

import datetime as dt

from core.errors import NotFoundError
from storage.schema import utcnow

RECENT = 50
USAGE_WINDOW = dt.timedelta(days=1)


def admin_names(text: str) -> set[str]:
    return {name.strip() for name in (text or "").split(",") if name.strip()}


class Admin:
    def __init__(self, admins: set[str], chat, store=None):
        self.admins, self.chat, self.store = set(admins), chat, store

    def is_admin(self, owner: str | None) -> bool:
        return owner is not None and owner in self.admins

    def overview(self, owner: str | None) -> dict:
        if not self.is_admin(owner):
            raise NotFoundError("There is no admin view for this account.")
        worker = getattr(self.chat.host, "_worker", None)
        queue = {"active": worker.active, "waiting": worker.waiting, "max_active": worker.slots.max_active,
                 "max_waiting": worker.slots.max_waiting} if worker is not None else {}
        recent = self.store.entries(newest_first=True, limit=RECENT) if self.store is not None else []
        return {
            "queue": queue,
            "usage": self.store.usage(utcnow() - USAGE_WINDOW) if self.store is not None else [],
            "in_progress": self.chat.in_progress(),
            "tool_servers": self.chat.toolbox.servers(),
            "recent": [{"at": e.at, "user": e.owner, "action": e.action, "outcome": e.outcome,
                        "conversation": (e.conversation_id or "")[:8], "effort": e.effort or "",
                        "tokens": (e.prompt_tokens or 0) + (e.completion_tokens or 0) or "",
                        "detail": ", ".join(f"{k}={v}" for k, v in e.detail.items() if k != "text")}
                       for e in recent],
        }

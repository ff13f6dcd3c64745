"""The audit log: one row per thing a user did, appended, never edited. Retention removes rows
older than the deployment keeps; nothing else deletes. The per-user limits count from here too,
so they hold across restarts and across several app processes on one database."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

from sqlalchemy import delete, func, insert, select

from storage.repository import Repository
from storage.schema import AuditEntry, utcnow


@dataclass
class AuditRecord:
    id: int
    at: str
    owner: str
    action: str
    outcome: str
    conversation_id: str | None
    effort: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    detail: dict

    def to_dict(self) -> dict:
        return asdict(self)


def _record(e: AuditEntry) -> AuditRecord:
    return AuditRecord(e.id, e.at.isoformat(timespec="milliseconds"), e.owner, e.action, e.outcome,
                       e.conversation_id, e.effort, e.prompt_tokens, e.completion_tokens, json.loads(e.detail or "{}"))


_INSERT_ENTRY = insert(AuditEntry.__table__)


class AuditStore:
    def __init__(self, repo: Repository):
        self.repo = repo

    def append(self, owner: str, action: str, *, outcome: str = "ok", conversation_id: str | None = None,
               effort: str | None = None, prompt_tokens: int | None = None, completion_tokens: int | None = None,
               detail: dict | None = None, at: dt.datetime | None = None) -> None:
        row = {"at": at or utcnow(), "owner": owner, "action": action, "outcome": outcome,
               "conversation_id": conversation_id, "effort": effort, "prompt_tokens": prompt_tokens,
               "completion_tokens": completion_tokens, "detail": json.dumps(detail or {})}
        with self.repo.writing() as s:  # one statement compiled once (every turn writes two entries)
            s.connection().execute(_INSERT_ENTRY, row)

    def entries(self, since: dt.datetime | None = None, owner: str | None = None, limit: int | None = None,
                newest_first: bool = False) -> list[AuditRecord]:
        query = select(AuditEntry)
        if since is not None:
            query = query.where(AuditEntry.at >= since)
        if owner is not None:
            query = query.where(AuditEntry.owner == owner)
        order = (AuditEntry.at.desc(), AuditEntry.id.desc()) if newest_first else (AuditEntry.at, AuditEntry.id)
        query = query.order_by(*order).limit(limit)
        with self.repo.session() as s:
            return [_record(e) for e in s.scalars(query)]

    def count(self, owner: str, actions: tuple[str, ...], since: dt.datetime) -> int:
        with self.repo.session() as s:
            return s.scalar(select(func.count(AuditEntry.id)).where(
                AuditEntry.owner == owner, AuditEntry.action.in_(actions), AuditEntry.at >= since)) or 0

    def oldest(self, owner: str, actions: tuple[str, ...], since: dt.datetime) -> dt.datetime | None:
        with self.repo.session() as s:
            return s.scalar(select(func.min(AuditEntry.at)).where(
                AuditEntry.owner == owner, AuditEntry.action.in_(actions), AuditEntry.at >= since))

    def tokens(self, owner: str, since: dt.datetime) -> int:
        """Tokens the user's answers used since then (prompt and completion)."""
        with self.repo.session() as s:
            total = s.execute(select(func.coalesce(func.sum(AuditEntry.prompt_tokens), 0),
                                     func.coalesce(func.sum(AuditEntry.completion_tokens), 0))
                              .where(AuditEntry.owner == owner, AuditEntry.at >= since)).one()
        return int(total[0]) + int(total[1])

    def usage(self, since: dt.datetime) -> list[dict]:
        """Per user since then: answers, tokens, last activity (the admin view)."""
        query = (select(AuditEntry.owner, func.count(AuditEntry.id), func.coalesce(func.sum(AuditEntry.prompt_tokens), 0),
                        func.coalesce(func.sum(AuditEntry.completion_tokens), 0), func.max(AuditEntry.at))
                 .where(AuditEntry.at >= since, AuditEntry.action == "answer")
                 .group_by(AuditEntry.owner).order_by(func.max(AuditEntry.at).desc()))
        with self.repo.session() as s:
            return [{"user": o, "answers": n, "prompt_tokens": int(p), "completion_tokens": int(c),
                     "last": last.isoformat(timespec="seconds")} for o, n, p, c, last in s.execute(query)]

    def prune(self, before: dt.datetime) -> int:
        """Retention: remove entries older than `before` (the only deletion there is)."""
        with self.repo.writing() as s:
            return s.execute(delete(AuditEntry).where(AuditEntry.at < before)).rowcount or 0

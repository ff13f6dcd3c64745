"""Who did what: the audit log's service side, and its command line.

    python -m backend.observability.audit export --since 2026-11-01 --format jsonl [--database-url URL | --data-dir DIR]

Every service records through one `Audit`: sign-ins (ok and failed), send, stop, regenerate, edit,
delete, export, share links (create, revoke, open, copy), API requests (with the key's prefix),
tool calls (name and outcome), each answer's token counts, and a change of the reasoning policy
between two starts. No message text unless --audit-content; retention removes entries older than
--audit-retention-days (checked at start and hourly). A failure to write the log is logged and
never fails the user's request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import threading
import time

from core.config import add_database_flags, database_url
from storage.schema import utcnow

log = logging.getLogger(__name__)
PRUNE_EVERY_S = 3600


class Audit:
    """Records actions; with no store (tests of other parts), records nothing."""

    def __init__(self, store=None, *, content: bool = False, retention_days: int = 0, clock=time.monotonic):
        self.store, self.content, self.retention_days = store, content, retention_days
        # None, not 0.0: monotonic() counts from boot, so "last pruned at 0" would skip pruning for the
        # whole first hour of a machine's uptime (and a container restarted daily might never prune).
        self._pruned_at: float | None = None
        self._clock = clock
        self._lock = threading.Lock()

    def record(self, owner: str | None, action: str, *, text: str | None = None, outcome: str = "ok",
               conversation_id: str | None = None, effort: str | None = None, prompt_tokens: int | None = None,
               completion_tokens: int | None = None, **detail) -> None:
        if self.store is None:
            return
        if text is not None and self.content:
            detail["text"] = text
        try:
            self.store.append(owner or "-", action, outcome=outcome, conversation_id=conversation_id, effort=effort,
                              prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                              detail={k: v for k, v in detail.items() if v is not None})
            self._prune_now_and_then()
        except Exception:  # noqa: BLE001 - the log must never fail the user's request
            log.exception("could not write the audit log (%s)", action)

    def _prune_now_and_then(self) -> None:
        if not self.retention_days:
            return
        with self._lock:
            now = self._clock()
            if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_S:
                return
            self._pruned_at = now
        removed = self.store.prune(utcnow() - dt.timedelta(days=self.retention_days))
        if removed:
            log.info("audit log: removed %d entries older than %d days", removed, self.retention_days)

    def policy(self, reasoning_display: str) -> None:
        """At start: note the reasoning policy when it differs from the one the log saw last."""
        if self.store is None:
            return
        last = next((e for e in self.store.entries(newest_first=True, limit=50) if e.action == "policy"), None)
        if last is None or last.detail.get("reasoning_display") != reasoning_display:
            self.record("-", "policy", reasoning_display=reasoning_display,
                        previous=last.detail.get("reasoning_display") if last else None)
        self._prune_now_and_then()


def _since(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise SystemExit(f"error: --since must be a date or time like 2026-11-01 or 2026-11-01T12:00, not {text!r}")


def main(argv: list[str] | None = None) -> None:
    from storage.audit import AuditStore  # noqa: PLC0415 - the command line only
    from storage.repository import Repository  # noqa: PLC0415

    parser = argparse.ArgumentParser(description="Read the app's audit log.")
    parser.add_argument("command", choices=["export"])
    parser.add_argument("--since", help="from this date or time (UTC), e.g. 2026-11-01")
    parser.add_argument("--user", help="only this user's entries")
    parser.add_argument("--format", choices=["jsonl", "json"], default="jsonl")
    add_database_flags(parser)
    args = parser.parse_args(argv)
    entries = AuditStore(Repository.open(database_url(args))).entries(since=_since(args.since) if args.since else None,
                                                        owner=args.user)
    rows = [e.to_dict() for e in entries]
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        for row in rows:
            print(json.dumps(row))


if __name__ == "__main__":
    main()

"""Per-user limits: messages a minute and tokens a day (0: no limit), for the page and the API
alike. Counted from the audit log, so they hold across restarts and across app processes on one
database. A refusal says which limit and when to try again."""

from __future__ import annotations

import datetime as dt
import math

from core.errors import LimitError
from storage.schema import utcnow

MINUTE, DAY = dt.timedelta(minutes=1), dt.timedelta(days=1)
COUNTED = ("send", "regenerate", "edit", "compare", "api_request")  # each starts an answer (a comparison, three)


def _wait_text(seconds: float) -> str:
    seconds = max(1, math.ceil(seconds))
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 7200:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{math.ceil(seconds / 3600)} hours"


class Limits:
    def __init__(self, store=None, *, messages_per_minute: int = 0, tokens_per_day: int = 0):
        self.store = store
        self.messages_per_minute, self.tokens_per_day = messages_per_minute, tokens_per_day

    @property
    def on(self) -> bool:
        return self.store is not None and bool(self.messages_per_minute or self.tokens_per_day)

    def check(self, owner: str, now: dt.datetime | None = None) -> None:
        """Raise LimitError when `owner` may not start another answer now."""
        if not self.on:
            return
        now = now or utcnow()
        if self.messages_per_minute:
            since = now - MINUTE
            if self.store.count(owner, COUNTED, since) >= self.messages_per_minute:
                oldest = self.store.oldest(owner, COUNTED, since) or now
                wait = (oldest + MINUTE - now).total_seconds()
                raise LimitError(f"You have sent {self.messages_per_minute} messages in the last minute, this "
                                 f"server's limit. Try again in {_wait_text(wait)}; your message was not sent.", wait)
        if self.tokens_per_day:
            used = self.store.tokens(owner, now - DAY)
            if used >= self.tokens_per_day:
                wait = DAY.total_seconds() / 4  # a rolling day: a part of the oldest use frees up within hours
                oldest = self.store.oldest(owner, ("answer",), now - DAY)
                if oldest is not None:
                    wait = (oldest + DAY - now).total_seconds()
                raise LimitError(f"You have used {used:,} tokens in the last 24 hours; this server allows "
                                 f"{self.tokens_per_day:,}. Try again in {_wait_text(wait)}.", wait)

"""An answer being written, owned by the server: it runs to its end whoever is watching.

A `LiveTurn` runs on its own thread: it reads the worker's events, folds them into the live
message, saves it every couple of seconds and at the end. Pages subscribe with `snapshots()`
and only relay: a page that closes, reloads or loses its connection ends its own subscription,
never the turn. Only `cancel` (Stop, from any tab of the owner, or the API) or `interrupt` (a
clean shutdown) end a turn early. A turn holds one live message however many pages watch, so
its memory stays bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterator

from core.events import Answer, Done, Preamble, Reasoning, ToolCall
from core.records import MessageStatus, MessageView

log = logging.getLogger(__name__)

STREAM_INTERVAL_S = 0.05  # at most 20 page updates a second, however fast tokens come
IDLE_WAKE_S = 0.5  # a waiting subscriber re-checks at least this often


@dataclass
class Snapshot:
    """What a page shows: the stored history plus the answer being written."""

    conversation_id: str
    history: list[MessageView]  # the same list object for a whole turn
    live: MessageView | None = None
    done: bool = False


class LiveTurn:
    def __init__(self, owner: str, conversation_id: str, history: list[MessageView], live: MessageView, job,
                 save: Callable[..., None], finish: Callable[[MessageView, Done], None],
                 save_interval_s: float, on_end: Callable[["LiveTurn"], None]):
        self.owner, self.conversation_id, self.history, self.job = owner, conversation_id, history, job
        self._live, self._save, self._finish, self._on_end = live, save, finish, on_end
        self.save_interval_s = save_interval_s
        self._cond = threading.Condition()
        self.version = 0  # bumped on every change of the live message
        self._urgent = 0  # bumped when a phase starts (reasoning, answer, a trace step): shown at once
        self.done = False
        self.watchers = 0
        self._interrupted = False
        self._thread = threading.Thread(target=self._run, name=f"turn-{conversation_id[:8]}", daemon=True)

    def start(self) -> "LiveTurn":
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Stop: the answer so far is kept and marked stopped."""
        self.job.cancel()

    def interrupt(self, timeout: float = 10.0) -> None:
        """A clean shutdown: end the turn, save it as interrupted (as after a crash), wait for that."""
        self._interrupted = True
        self.job.cancel()
        self._thread.join(timeout)

    # -- the turn's own thread -------------------------------------------------------------

    def _run(self) -> None:
        live, last_save, done = self._live, time.monotonic(), None
        try:
            for event in self.job.events():
                if isinstance(event, Done):
                    done = event
                    break
                with self._cond:
                    if isinstance(event, Answer) and live.reasoning_time is None:
                        live.reasoning_time = self.job.reasoning_time  # "Thought for N s" at once
                    phase = _apply(live, event)
                    self.version += 1
                    self._urgent += phase
                    self._cond.notify_all()
                now = time.monotonic()
                if now - last_save >= self.save_interval_s or (phase and isinstance(event, Answer)):
                    self._save(live)  # also right when the answer starts: the whole reasoning is then safe
                    last_save = now
        except Exception:  # a bug must not leave the turn "streaming" or its pages waiting forever
            log.exception("a turn failed")
            live.status, live.error = MessageStatus.ERROR, "The answer failed on the server."
        self._end(done)

    def _end(self, done: Done | None) -> None:
        """Record how the turn ended (always exactly once), then wake every subscriber."""
        live = self._live
        try:
            if done is not None and not self._interrupted:
                self._finish(live, done)
            else:  # interrupted by a shutdown, failed, or a job that ended without Done
                if self._interrupted:
                    live.status = MessageStatus.INTERRUPTED
                elif live.status == MessageStatus.STREAMING:
                    live.status = MessageStatus.STOPPED
                self._save(live, status=live.status, error=live.error)
        except Exception:
            log.exception("saving the end of a turn failed")
        finally:
            with self._cond:
                self.done = True
                self.version += 1
                self._cond.notify_all()
            self._on_end(self)

    # -- subscribers ---------------------------------------------------------------------------

    def _copy(self) -> MessageView:
        return replace(self._live, trace=[dict(e) for e in self._live.trace])

    def snapshots(self, interval: float = STREAM_INTERVAL_S) -> Iterator[Snapshot]:
        """What has been written so far, then each change (at most every `interval` seconds, phase
        changes at once), then the end. Closing this iterator leaves the turn running."""
        seen, urgent, last = -1, -1, 0.0
        with self._cond:
            self.watchers += 1
        try:
            while True:
                with self._cond:
                    while self.version == seen and not self.done:
                        self._cond.wait(IDLE_WAKE_S)
                    wait = interval - (time.monotonic() - last)
                    if wait > 0 and not self.done and self._urgent == urgent:
                        self._cond.wait(wait)  # throttle: fold more tokens into this update
                    seen, urgent, done, live = self.version, self._urgent, self.done, self._copy()
                last = time.monotonic()
                yield Snapshot(self.conversation_id, self.history, live, done=done)
                if done:
                    return
        finally:
            with self._cond:
                self.watchers -= 1


def _apply(live: MessageView, event) -> bool:
    """Fold an event into the live message; True when the page should update now."""
    if isinstance(event, Reasoning):
        first = not live.reasoning
        live.reasoning += event.text
        return first
    if isinstance(event, Answer):
        first = not live.content
        live.content += event.text
        return first  # the first answer token closes the reasoning panel at once
    if isinstance(event, Preamble):
        if live.trace and live.trace[-1].get("kind") == "preamble" and not live.trace[-1].get("closed"):
            live.trace[-1]["text"] += event.text
            return False
        live.trace.append({"kind": "preamble", "text": event.text})
        return True
    if isinstance(event, ToolCall):
        if live.trace and live.trace[-1].get("kind") == "preamble":
            live.trace[-1]["closed"] = True
        live.trace.append({"kind": "tool_call", "recipient": event.recipient, "arguments": event.arguments})
        return True
    return False

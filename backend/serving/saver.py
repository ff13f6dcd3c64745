"""Saving the answers being written: all of them together, in one transaction per interval.

A crash loses at most `interval` seconds of text, as before; what changed is the cost. Each turn
saving its own message took a read, two updates and a commit on the turn's own thread; with many
chats at once that was a commit per chat per interval, competing with the page for the interpreter.
Here one thread writes every answer that changed since its last save in one statement batch, so the
cost per interval is one commit however many chats stream.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Protocol

log = logging.getLogger(__name__)

MIN_WAIT_S = 0.01  # an interval of 0 (tests) still yields the interpreter between batches


class Saved(Protocol):
    """What the saver needs of an answer being written (a backend.serving.live.LiveAnswer)."""

    owner: str
    version: int  # bumped on every change

    @property
    def message_id(self) -> int: ...

    def partial_fields(self) -> dict: ...


class PartialSaver:
    def __init__(self, write: Callable[[list[tuple[str, int, dict]]], None], interval: float):
        self.write, self.interval = write, interval
        self._saved: dict[int, tuple[Saved, int]] = {}  # message id -> (turn, version last saved)
        self._lock = threading.Lock()  # guards _saved
        self._writing = threading.Lock()  # held while a batch is being written
        self._wake = threading.Event()
        threading.Thread(target=self._loop, name="partial-saver", daemon=True).start()

    def add(self, turn: Saved) -> None:
        with self._lock:
            self._saved[turn.message_id] = (turn, turn.version)

    def soon(self) -> None:
        """Save at once rather than at the end of the interval (the answer has just started: the whole
        reasoning is then safe)."""
        self._wake.set()

    def remove(self, turn: Saved) -> None:
        """Stop saving a turn; when this returns no partial save of it is in flight, so the turn's final
        save cannot be overwritten by an older partial one."""
        with self._writing, self._lock:
            self._saved.pop(turn.message_id, None)

    def flush(self) -> int:
        """Write every answer that changed since its last save; returns how many."""
        with self._writing:
            with self._lock:
                due = [(t, t.version) for t, saved in self._saved.values() if t.version != saved]
            if not due:
                return 0
            try:
                self.write([(t.owner, t.message_id, t.partial_fields()) for t, _ in due])
            except Exception:  # a failed save must not stop the saving of the next interval
                log.exception("saving the answers being written failed")
                return 0
            with self._lock:
                for turn, version in due:
                    if turn.message_id in self._saved:
                        self._saved[turn.message_id] = (turn, version)
            return len(due)

    def _loop(self) -> None:
        while True:
            self._wake.wait(max(self.interval, MIN_WAIT_S))
            self._wake.clear()
            self.flush()

"""An answer being written, owned by the server: it runs to its end whoever is watching.

A `LiveAnswer` runs on its own thread: it reads the worker's events and folds them into the live
message; a PartialSaver saves it every couple of seconds (with every other turn's) and the turn
saves it at the end. Pages subscribe with `snapshots()`
and only relay: a page that closes, reloads or loses its connection ends its own subscription,
never the turn. Only `cancel` (Stop, from any tab of the owner, or the API) or `interrupt` (a
clean shutdown) end a turn early. A turn holds one live message however many pages watch, so
its memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

from backend.services.policy import ReasoningPolicy
from backend.services.summary import Summarizer
from backend.serving.saver import PartialSaver
from core.events import Answer, Done, Preamble, Reasoning, StepEnd, ToolCall, ToolResult
from core.records import MessageStatus, MessageView
from core.trace import PreambleStep, ReasoningStep, ToolCallStep, ToolResultStep, copy_step

log = logging.getLogger(__name__)

STREAM_INTERVAL_S = 0.05  # at most 20 page updates a second per page, however fast tokens come
UPDATES_PER_S = 200  # all pages together: past this, each page gets fewer, larger updates
IDLE_WAKE_S = 0.5  # a waiting subscriber re-checks at least this often


class Pace:
    """How often a page may update. A page update costs the server about a millisecond of CPU whatever
    it carries, and tokens come as fast as the engine makes them: so each page gets at most
    1/STREAM_INTERVAL_S updates a second, and all pages together at most UPDATES_PER_S. With many
    chats at once each update simply carries more text; the server never falls behind into one
    update per token."""

    def __init__(self, updates_per_s: float = UPDATES_PER_S, floor_s: float = STREAM_INTERVAL_S):
        self.updates_per_s, self.floor_s = updates_per_s, floor_s
        self._lock = threading.Lock()
        self.watching = 0
        self.on_update: Callable[[], None] | None = None  # counts updates sent (the metrics)

    def join(self) -> None:
        with self._lock:
            self.watching += 1

    def leave(self) -> None:
        with self._lock:
            self.watching -= 1

    def interval(self) -> float:
        return max(self.floor_s, self.watching / self.updates_per_s)


@dataclass
class Snapshot:
    """What a page shows: the stored history plus the answer being written."""

    conversation_id: str
    history: list[MessageView]  # the same list object for a whole turn
    live: MessageView | None = None
    done: bool = False


class LiveAnswer:
    def __init__(self, owner: str, conversation_id: str, history: list[MessageView], live: MessageView, job,
                 save: Callable[[MessageView, MessageStatus], None], finish: Callable[[MessageView, Done], None],
                 saver: PartialSaver, on_end: Callable[["LiveAnswer"], None], pace: Pace | None = None,
                 policy: ReasoningPolicy | None = None, summarizer: Summarizer | None = None):
        self.owner, self.conversation_id, self.job = owner, conversation_id, job
        self.pace = pace or Pace()
        self.policy = policy or ReasoningPolicy()
        self.history = self.policy.views(history)  # what pages see of the earlier messages, once
        self.summary = summarizer.turn() if summarizer is not None and self.policy.summarize else None
        self._live, self._save, self._finish, self._on_end = live, save, finish, on_end
        self._saver = saver  # saves the text so far every few seconds, with every other turn's
        self._cond = threading.Condition()
        self.version = 0  # bumped on every change of the live message
        self._urgent = 0  # bumped when a phase starts (reasoning, answer, a trace step): shown at once
        self.done = False
        self.ended_with: Done | None = None  # the Done the turn ended with (None: stopped without one)
        self.first_step = len(live.trace)  # steps before this run (a paused turn that goes on) are not new
        self.watchers = 0
        # for a comparison's chart while it is written: when it started, when its answer began, and its
        # reasoning deltas so far (one per token from this app's engines; the exact count comes at the end)
        self.started_at = self.answered_at = None
        self.reasoning_seen = 0
        self._sleepers: dict = {}  # Watch -> (loop, future): async subscribers sleeping out their pace
        self._interrupted = False
        self._thread = threading.Thread(target=self._run, name=f"turn-{conversation_id[:8]}", daemon=True)

    @property
    def message_id(self) -> int:
        return self._live.id

    def partial_fields(self) -> dict:
        """What a periodic save writes: the text so far."""
        with self._cond:
            live = self._live
            return {"content": live.content, "reasoning": self.policy.stored(live.reasoning),
                    "trace": [copy_step(e) for e in live.trace]}

    def start(self) -> "LiveAnswer":
        self.started_at = time.monotonic()
        self._saver.add(self)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Stop: the answer so far is kept and marked stopped (a summary being written stops too)."""
        self.job.cancel()
        if self.summary is not None:
            self.summary.cancel()

    def interrupt(self, timeout: float = 10.0) -> None:
        """A clean shutdown: end the turn, save it as interrupted (as after a crash), wait for that."""
        self._interrupted = True
        self.job.cancel()
        if self.summary is not None:
            self.summary.cancel()
        self._thread.join(timeout)

    # -- the turn's own thread -------------------------------------------------------------

    def _run(self) -> None:
        live, done, steps = self._live, None, Steps(self._live)
        try:
            for event in self.job.events():
                if isinstance(event, Done):
                    done = event
                    break
                with self._cond:
                    if isinstance(event, Answer) and live.reasoning_time is None:
                        live.reasoning_time = self.job.reasoning_time  # "Thought for N s" at once
                    if isinstance(event, Answer) and self.answered_at is None:
                        self.answered_at = time.monotonic()
                    elif isinstance(event, Reasoning):
                        self.reasoning_seen += 1
                    phase = steps.apply(event)
                    self.version += 1
                    self._urgent += phase
                    self._cond.notify_all()
                    if phase:
                        self._wake()
                if phase and isinstance(event, Answer):
                    self._saver.soon()  # the answer starts: the whole reasoning is safe at once
            with self._cond:
                steps.close()
            self._summarize(done)
        except Exception:  # a bug must not leave the turn "streaming" or its pages waiting forever
            log.exception("a turn failed")
            live.status, live.error = MessageStatus.ERROR, "The answer failed on the server."
        with self._cond:
            steps.close()
        self._end(done)

    def _summarize(self, done: Done | None) -> None:
        """--reasoning-display summary: after the answer, the same model summarizes the reasoning,
        streamed into the panel as it is written."""
        if self.summary is None:
            return
        live = self._live
        for text in self.summary.stream(live.reasoning, done):
            with self._cond:
                live.reasoning_summary += text
                self.version += 1
                self._cond.notify_all()

    def _end(self, done: Done | None) -> None:
        """Record how the turn ended (always exactly once), then wake every subscriber."""
        live = self._live
        self.ended_with = done
        self._saver.remove(self)  # from here on only this final save writes the message
        try:
            if done is not None and not self._interrupted:
                self._finish(live, done)
            else:  # interrupted by a shutdown, failed, or a job that ended without Done
                if self._interrupted:
                    live.status = MessageStatus.INTERRUPTED
                elif live.status == MessageStatus.STREAMING:
                    live.status = MessageStatus.STOPPED
                self._save(live, live.status)
        except Exception:
            log.exception("saving the end of a turn failed")
        finally:
            try:  # unregistered before any page sees the end: a message sent the moment it shows is accepted
                self._on_end(self)
            finally:
                with self._cond:
                    self.done = True
                    self.version += 1
                    self._cond.notify_all()
                    self._wake()

    def _wake(self) -> None:
        """(With the lock held.) A change pages show at once — a phase starts, the turn ends: wake the
        pages sleeping out their pace interval, which would otherwise see it up to an interval later
        (0.3 s with 64 chats streaming: the end of every answer arrived that much late)."""
        sleepers, self._sleepers = self._sleepers, {}
        for loop, future in sleepers.values():
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that page's event loop has closed
                pass

    # -- subscribers ---------------------------------------------------------------------------

    def _copy(self) -> MessageView:
        return replace(self._live, trace=[copy_step(e) for e in self._live.trace])

    def shown(self) -> MessageView:
        """The answer as pages may see it (the reasoning policy applied), a copy."""
        return self.policy.view(self._copy(), writing=not self.done)

    def message(self) -> MessageView:
        """A copy of the answer as it stands."""
        with self._cond:
            return self._copy()

    def snapshots(self) -> "Watch":
        """What has been written so far, then each change (as often as the Pace allows, phase
        changes at once), then the end; iterate it in a thread or with `async for`. Closing it (or
        dropping it) leaves the turn running."""
        return Watch(self)


class Watch:
    """One subscriber's view of a LiveAnswer. It holds no events, only where it has got to: memory per
    turn stays one live message however many pages come and go."""

    def __init__(self, turn: LiveAnswer):
        self.turn, self.pace = turn, turn.pace
        # _last starts at -inf, not 0.0: monotonic() counts from boot, so 0.0 is no "never" (audit.py had that bug)
        self._seen, self._urgent, self._last, self._finished = -1, -1, -math.inf, False
        with turn._cond:
            turn.watchers += 1
        self.pace.join()

    def _take(self) -> Snapshot | None:
        """The next snapshot if one is due now (call with the turn's lock held)."""
        t = self.turn
        if t.version == self._seen and not t.done:
            return None
        if not t.done and t._urgent == self._urgent and time.monotonic() - self._last < self.pace.interval():
            return None  # throttle: fold more tokens into this update
        self._seen, self._urgent, self._last = t.version, t._urgent, time.monotonic()
        return Snapshot(t.conversation_id, t.history, t.shown(), done=t.done)

    def _deliver(self, snap: Snapshot) -> Snapshot:
        if self.pace.on_update is not None:
            self.pace.on_update()
        if snap.done:
            self.close()
        return snap

    # a page in a worker thread (or a test) -----------------------------------------------------
    def __iter__(self) -> "Watch":
        return self

    def __next__(self) -> Snapshot:
        if self._finished:
            raise StopIteration
        with self.turn._cond:
            while (snap := self._take()) is None:
                wait = self.pace.interval() - (time.monotonic() - self._last)
                self.turn._cond.wait(max(wait, 0.001) if self.turn.version != self._seen else IDLE_WAKE_S)
        return self._deliver(snap)

    # a page on the event loop: never holds a thread, so cancelling it is immediate ------------------
    def __aiter__(self) -> "Watch":
        return self

    async def __anext__(self) -> Snapshot:
        if self._finished:
            raise StopAsyncIteration
        loop = asyncio.get_running_loop()
        while True:
            with self.turn._cond:
                snap = self._take()
                fresh = self.turn.version != self._seen
                if snap is None:  # sleep until the pace allows an update, or the turn wakes us sooner
                    woken = loop.create_future()
                    self.turn._sleepers[self] = (loop, woken)
            if snap is not None:
                return self._deliver(snap)
            interval = self.pace.interval()  # throttled: sleep out the rest; idle: a whole interval
            timer = loop.call_later(max(interval - (time.monotonic() - self._last), 0.005) if fresh else interval,
                                    _resolve, woken)
            try:
                await woken
            finally:
                timer.cancel()

    def close(self) -> None:
        if not self._finished:
            self._finished = True
            with self.turn._cond:
                self.turn.watchers -= 1
                self.turn._sleepers.pop(self, None)
            self.pace.leave()

    def __del__(self):
        self.close()


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class Steps:
    """Folds a turn's events into its live message: the answer and the reasoning as text, and the
    trace as the ordered list of steps (reasoning, preamble, tool call, tool result) the page and
    the database keep. A reasoning step holds offsets into the message's reasoning (never a copy),
    so a share without reasoning has nothing of it to leak."""

    def __init__(self, live: MessageView):
        self.live = live
        self._opened: float | None = None  # when the open reasoning step began
        self._step_start = len(live.trace)  # first trace entry of the generation in progress

    def apply(self, event) -> bool:
        """Fold an event in; True when the page should update now (a new step began)."""
        live = self.live
        if isinstance(event, Reasoning):
            return self._reason(event.text)
        self._close_reasoning()
        if isinstance(event, Answer):
            first = not live.content
            live.content += event.text
            return first  # the first answer token closes the reasoning panel at once
        if isinstance(event, Preamble):
            last = live.trace[-1] if live.trace else None
            if isinstance(last, PreambleStep) and not last.closed:
                last.text += event.text
                return False
            live.trace.append(PreambleStep(event.text))
            return True
        if isinstance(event, ToolCall):
            if live.trace and isinstance(live.trace[-1], PreambleStep):
                live.trace[-1].closed = True
            live.trace.append(ToolCallStep(event.recipient, event.arguments))
            return True
        if isinstance(event, ToolResult):
            seconds = None if event.seconds is None else round(event.seconds, 3)
            live.trace.append(ToolResultStep(event.recipient, event.output, event.status, seconds, event.summary,
                                             [dict(p) for p in event.pages]))
            return True
        if isinstance(event, StepEnd):
            thoughts = [e for e in live.trace[self._step_start:] if isinstance(e, ReasoningStep)]
            if len(thoughts) == 1:
                thoughts[0].tokens = event.reasoning_tokens
            self._step_start = len(live.trace)
        return False

    def _reason(self, text: str) -> bool:
        live = self.live
        live.reasoning += text
        last = live.trace[-1] if live.trace else None
        if isinstance(last, ReasoningStep) and self._opened is not None:
            last.end = len(live.reasoning)
            return False
        self._opened = time.monotonic()
        if len(live.reasoning) > len(text):  # a later step's thoughts: apart from the earlier ones in the text
            live.reasoning = live.reasoning[: -len(text)] + "\n\n" + text
        live.trace.append(ReasoningStep(start=len(live.reasoning) - len(text), end=len(live.reasoning)))
        return True

    def _close_reasoning(self) -> None:
        if self._opened is not None:
            self.live.trace[-1].seconds = round(time.monotonic() - self._opened, 2)
            self._opened = None

    def close(self) -> None:
        """The turn ended: a reasoning step still open ends now."""
        self._close_reasoning()

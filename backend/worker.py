"""The background inference worker that every chat shares.

A chat builds a ChatRequest, `Worker.submit` renders it to harmony token ids
(failing at once if the queue is full), and the returned Job yields typed
events while the engine streams ids. The engine does the batching (for the
in-process model: transformers' continuous batching); the worker adds
admission control, a per-request time limit, harmony parsing and stats.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

from backend.engines.base import FINISH_CANCELLED, FINISH_ERROR, FINISH_LENGTH, Engine, SamplingParams
from backend.harmony.bridge import chat_prompt
from backend.harmony.codec import HarmonyCodec, PromptSettings, Turn
from core.errors import BusyError
from core.events import (
    STOP_CALL,
    STOP_ERROR,
    STOP_LENGTH,
    STOP_RETURN,
    STOP_STOPPED,
    Answer,
    Done,
    Event,
    Reasoning,
    Stats,
)

log = logging.getLogger(__name__)

RETURN_ID, CALL_ID = 200002, 200012
READ_POLL_S = 0.1  # how often a waiting job re-checks cancel and its deadline


@dataclass
class ChatRequest:
    turns: list[Turn]
    settings: PromptSettings = field(default_factory=PromptSettings)
    temperature: float = 1.0
    max_new_tokens: int = 4096


class Worker:
    """Admission control in front of one engine."""

    def __init__(self, engine: Engine, codec: HarmonyCodec, *, max_active: int = 32,
                 max_waiting: int = 64, time_limit_s: float = 600.0):
        self.engine, self.codec = engine, codec
        self.max_active, self.max_waiting, self.time_limit_s = max_active, max_waiting, time_limit_s
        self._cond = threading.Condition()
        self.active = 0
        self.waiting = 0

    def submit(self, request: ChatRequest) -> "Job":
        """Render and queue a request; raise BusyError at once if the queue is full."""
        prompt = self.codec.render(request.turns, request.settings)
        with self._cond:
            if self.active < self.max_active:
                self.active += 1
                admitted = True
            elif self.waiting >= self.max_waiting:
                raise BusyError(ahead=self.active + self.waiting)
            else:
                self.waiting += 1
                admitted = False
        return Job(self, prompt, request, admitted)

    def chat_prompt(self, request: ChatRequest):
        return chat_prompt(request.turns, request.settings)

    def _wait_for_slot(self, job: "Job") -> bool:
        with self._cond:
            while self.active >= self.max_active:
                if job.cancelled or time.perf_counter() > job.deadline:
                    self.waiting -= 1
                    return False
                self._cond.wait(READ_POLL_S)
            self.waiting -= 1
            self.active += 1
            return True

    def _release(self) -> None:
        with self._cond:
            self.active -= 1
            self._cond.notify()


class Job:
    """One request's life: wait for a slot, stream, parse, report."""

    def __init__(self, worker: Worker, prompt: list[int], request: ChatRequest, admitted: bool):
        self.worker, self.prompt, self.request = worker, prompt, request
        self.submitted_at = time.perf_counter()
        self.deadline = self.submitted_at + worker.time_limit_s
        self.cancelled = False
        self._admitted = admitted
        self._stream = None
        self._started = False  # events() ran or discard() did: the slot is handled exactly once
        self._start_lock = threading.Lock()

    def cancel(self) -> None:
        """Stop from any thread; the engine frees the request's slot at its next step."""
        self.cancelled = True
        if self._stream is not None:
            self._stream.cancel()

    def _start(self) -> bool:
        with self._start_lock:
            started, self._started = self._started, True
            return not started

    def discard(self) -> None:
        """Give back the slot of a job whose events() will never run (its caller failed first)."""
        self.cancelled = True
        if self._start():
            if self._admitted:
                self.worker._release()
            else:
                with self.worker._cond:
                    self.worker.waiting -= 1

    def events(self) -> Iterator[Event]:
        if not self._start():
            return  # discarded
        if not self._admitted and not self.worker._wait_for_slot(self):
            reason = STOP_STOPPED if self.cancelled else STOP_ERROR
            yield Done(reason, Stats(stop_reason=reason),
                       error=None if self.cancelled else "Timed out waiting in the queue.")
            return
        try:
            yield from self._run()
        finally:
            if self._stream is not None and not self._stream.closed:
                self._stream.cancel()  # the consumer went away (page closed, stop pressed)
            self.worker._release()

    def _run(self) -> Iterator[Event]:
        params = SamplingParams(max_new_tokens=self.request.max_new_tokens,
                                temperature=self.request.temperature)
        try:
            self._stream = self.worker.engine.submit(self.prompt, params, self.worker.codec.stop_ids,
                                                     chat=self.worker.chat_prompt(self.request))
        except Exception as exc:  # one bad request must not take the worker down
            log.exception("engine refused a request")
            yield Done(STOP_ERROR, Stats(stop_reason=STOP_ERROR), error=str(exc))
            return
        if self.cancelled:
            self._stream.cancel()
        meter = _Meter(self.submitted_at)
        parser = self.worker.codec.parser()
        last, timed_out = None, False
        while True:
            if not timed_out and time.perf_counter() > self.deadline:
                timed_out = True
                self._stream.cancel()  # ends the stream: read() returns None next
            try:
                chunk = self._stream.read(timeout=READ_POLL_S)
            except queue.Empty:
                continue
            if chunk is None:
                break
            for token in chunk:
                last = token
                for event in parser.feed(token):
                    meter.saw(event)
                    yield event
                meter.count(parser)
        reason, error = self._stop_reason(last, timed_out)
        for event in parser.finish(show_partial_header=reason != STOP_STOPPED):
            meter.saw(event)
            yield event
        stats = meter.finish(reason, self._stream.usage)
        yield Done(reason, stats, error=error, malformed=parser.malformed,
                   harmony_messages=tuple(parser.messages))

    def _stop_reason(self, last: int | None, timed_out: bool) -> tuple[str, str | None]:
        finish, error = self._stream.finish_reason, self._stream.error
        if timed_out:
            return STOP_ERROR, f"Stopped after the time limit of {self.worker.time_limit_s:.0f} s."
        if finish == FINISH_CANCELLED:
            return STOP_STOPPED, None
        if finish == FINISH_ERROR:
            return STOP_ERROR, error or "The model failed while generating."
        if finish == FINISH_LENGTH:
            return STOP_LENGTH, None
        return (STOP_CALL if last == CALL_ID else STOP_RETURN), None


class _Meter:
    """Time to first token, reasoning time and token counts for one request."""

    def __init__(self, submitted_at: float):
        self.t0 = submitted_at
        self.first = self.reason_start = self.reason_end = None
        self.stats = Stats()

    def count(self, parser) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
            self.stats.ttft = now - self.t0
        self.stats.total_tokens += 1
        if parser.in_content and not parser.raw:
            if parser.channel == "analysis":
                self.stats.reasoning_tokens += 1
            elif parser.channel == "final":
                self.stats.answer_tokens += 1

    def saw(self, event: Event) -> None:
        now = time.perf_counter()
        if isinstance(event, Reasoning) and self.reason_start is None:
            self.reason_start = now
        if isinstance(event, Answer) and self.reason_start is not None and self.reason_end is None:
            self.reason_end = now

    def finish(self, reason: str, usage: dict | None = None) -> Stats:
        end = time.perf_counter()
        if usage and usage.get("completion_tokens") is not None:
            self._use_server_counts(usage)
        if self.reason_start is not None:
            self.stats.reasoning_time = (self.reason_end or end) - self.reason_start
        if usage and usage.get("tokens_per_s"):
            self.stats.tokens_per_s = usage["tokens_per_s"]  # measured by the server itself
        elif self.first is not None and end > self.first and self.stats.total_tokens > 1:
            self.stats.tokens_per_s = (self.stats.total_tokens - 1) / (end - self.first)
        self.stats.stop_reason = reason
        return self.stats

    def _use_server_counts(self, usage: dict) -> None:
        """A server's own token counts beat ours (in chat mode ours count re-encoded text). Without
        the server's reasoning count our split stays: same vocabulary, so the same tokens."""
        self.stats.total_tokens = int(usage["completion_tokens"])
        if usage.get("reasoning_tokens") is not None:
            self.stats.reasoning_tokens = int(usage["reasoning_tokens"])
            self.stats.answer_tokens = max(self.stats.total_tokens - self.stats.reasoning_tokens, 0)

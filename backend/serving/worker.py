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
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

from backend.engines.base import Engine, SamplingParams
from backend.harmony.bridge import chat_prompt
from backend.harmony.codec import HarmonyCodec, PromptMessage, PromptSettings, message_text
from backend.harmony.structured import FinalAnswerSpec, ResponseFormat, answer_mismatch, call_schema, strict_calls
from core.config import DEFAULT_MAX_NEW_TOKENS, DEFAULT_TEMPERATURE, DEFAULT_TOP_P, MODEL_WINDOW
from core.errors import BusyError, ContextLengthError
from core.events import Answer, Done, Event, Reasoning, Stats, StopReason

log = logging.getLogger(__name__)

READ_POLL_S = 0.1  # how often a waiting job re-checks cancel and its deadline
# A job reads its stream at most this often, taking every id that came meanwhile: its thread wakes
# 40 times a second, not once per token (each wake-up costs the whole server interpreter time; pages
# update at most 20 times a second anyway).
READ_TICK_S = 0.025
DEGRADED_S = 60.0  # how long one engine failure marks the worker degraded, unless a request is served first


@dataclass
class ChatRequest:
    turns: list[PromptMessage]
    settings: PromptSettings = field(default_factory=PromptSettings)
    temperature: float = DEFAULT_TEMPERATURE
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    time_limit_s: float | None = None  # what is left of the turn's time (the worker's limit if less)
    top_p: float = DEFAULT_TOP_P
    # tool_choice: None, the model chooses; a name, the answer starts as a call to functions.NAME; "",
    # as a call to one of the functions (harmony's header begun for the model: codec.call_header)
    call: str | None = None
    # the least answer budget worth running with: a page's turn makes room for it by leaving out its oldest
    # messages (the pipeline); an API request's prompt is refused only when it fills the window
    min_answer: int = 1
    # structured output: the final answer is JSON of this format, by constrained decoding (the engine's, or
    # an inference server's own in chat mode), and checked when it ends
    response_format: ResponseFormat | None = None


class Slots:
    """Admission: at most `max_active` requests decode at once, `max_waiting` wait behind them.

    A request is admitted (it runs now), queued (it waits for a slot) or refused as busy. Each
    admitted request calls `release` once; each queued one either `wait`s for a slot or `leave`s.
    """

    def __init__(self, max_active: int, max_waiting: int):
        self.max_active, self.max_waiting = max_active, max_waiting
        self._cond = threading.Condition()
        self.active = 0
        self.waiting = 0

    def admit(self) -> bool:
        """True: running now; False: queued. Raises BusyError when the queue is full too."""
        with self._cond:
            if self.active < self.max_active:
                self.active += 1
                return True
            if self.waiting >= self.max_waiting:
                raise BusyError(ahead=self.active + self.waiting)
            self.waiting += 1
            return False

    def wait(self, give_up: Callable[[], bool]) -> bool:
        """For a queued request: True once it holds a slot; False (and out of the queue) if it gave up."""
        with self._cond:
            while self.active >= self.max_active:
                if give_up():
                    self.waiting -= 1
                    return False
                self._cond.wait(READ_POLL_S)
            self.waiting -= 1
            self.active += 1
            return True

    def leave(self) -> None:
        """A queued request that will never wait."""
        with self._cond:
            self.waiting -= 1

    def release(self) -> None:
        with self._cond:
            self.active -= 1
            self._cond.notify()


class Health:
    """Whether the engine is failing requests now: degraded from a failure (the engine refused a request or
    ended one with an error) until a request is served again, or DEGRADED_S passed without one."""

    def __init__(self):
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self.failures = 0  # requests the engine failed since the start (/metrics)

    def failed(self) -> None:
        with self._lock:
            self._failed_at, self.failures = time.monotonic(), self.failures + 1

    def served(self) -> None:
        with self._lock:
            self._failed_at = None

    @property
    def degraded(self) -> bool:
        with self._lock:
            return self._failed_at is not None and time.monotonic() - self._failed_at < DEGRADED_S


class Worker:
    """Admission control, time limit and parsing in front of one engine."""

    def __init__(self, engine: Engine, codec: HarmonyCodec, *, max_active: int = 32,
                 max_waiting: int = 64, time_limit_s: float = 600.0):
        self.engine, self.codec, self.time_limit_s = engine, codec, time_limit_s
        self.slots = Slots(max_active, max_waiting)
        self.health = Health()

    @property
    def active(self) -> int:
        return self.slots.active

    @property
    def waiting(self) -> int:
        return self.slots.waiting

    def submit(self, request: ChatRequest) -> "Job":
        """Queue and render a request; raise BusyError at once if the queue is full. Admission comes
        first: a full server refuses before spending the render's time (which holds the interpreter)."""
        admitted = self.slots.admit()
        try:
            prompt = self.codec.render(request.turns, request.settings)
            header = self.codec.call_header(request.call) if request.call is not None else []
            request = self.fitted(request, len(prompt) + len(header))
        except BaseException:
            self.slots.release() if admitted else self.slots.leave()
            raise
        return Job(self, prompt + header, request, admitted=admitted, header=header)

    @property
    def window(self) -> int:
        """What one request may hold, prompt and answer (the engine says; an engine that does not, the model's)."""
        return getattr(self.engine.description, "context", None) or MODEL_WINDOW

    def fitted(self, request: ChatRequest, prompt_tokens: int) -> ChatRequest:
        """The request within what the engine can hold for it: a prompt that does not fit is refused
        (never admitted to wait for room that cannot come); the answer's budget is at most what is left."""
        window = self.window
        if prompt_tokens + min(request.min_answer, request.max_new_tokens) > window:
            raise ContextLengthError(prompt_tokens, window)
        return replace(request, max_new_tokens=min(request.max_new_tokens, window - prompt_tokens))

    def chat_prompt(self, request: ChatRequest):
        return chat_prompt(request.turns, request.settings)


class Job:
    """One request's life: wait for a slot, stream, parse, report."""

    def __init__(self, worker: Worker, prompt: list[int], request: ChatRequest, admitted: bool,
                 header: list[int] = ()):
        self.worker, self.prompt, self.request = worker, prompt, request
        self.header = list(header)  # the end of `prompt` that begins the answer's first message
        limit = min(worker.time_limit_s, request.time_limit_s or worker.time_limit_s)
        self.deadline = time.perf_counter() + limit
        self.cancelled = False
        self.meter = _Meter(time.perf_counter())
        self._slots, self._admitted = worker.slots, admitted
        self._stream = None
        self._started = False  # events() ran or discard() did: the slot is handled exactly once
        self._start_lock = threading.Lock()

    @property
    def reasoning_time(self) -> float | None:
        """Seconds from the first reasoning to the first answer text (None until the answer starts)."""
        return self.meter.reasoning_time

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
        if not self._start():
            return
        if self._admitted:
            self._slots.release()
        else:
            self._slots.leave()

    def _gave_up(self) -> bool:
        return self.cancelled or time.perf_counter() > self.deadline

    def events(self) -> Iterator[Event]:
        if not self._start():
            return  # discarded
        if not self._admitted and not self._slots.wait(self._gave_up):
            reason = StopReason.STOPPED if self.cancelled else StopReason.ERROR
            yield Done(reason, Stats(stop_reason=reason),
                       error=None if self.cancelled else "Timed out waiting in the queue.")
            return
        try:
            yield from self._run()
        finally:
            if self._stream is not None and not self._stream.closed:
                self._stream.cancel()  # the consumer went away (page closed, stop pressed)
            self._slots.release()

    def _run(self) -> Iterator[Event]:
        fmt, settings = self.request.response_format, self.request.settings
        strict = strict_calls(settings.tools, settings.client_namespaces)
        spec = FinalAnswerSpec(fmt, tuple(self.header), tuple((r, call_schema(p)) for r, p in strict.items()))
        params = SamplingParams(max_new_tokens=self.request.max_new_tokens,
                                temperature=self.request.temperature, top_p=self.request.top_p,
                                constraint=spec if fmt or strict else None)
        try:
            self._stream = self.worker.engine.submit(self.prompt, params, self.worker.codec.stop_ids,
                                                     chat=self.worker.chat_prompt(self.request))
        except Exception as exc:  # one bad request must not take the worker down
            log.exception("engine refused a request")
            self.worker.health.failed()
            yield Done(StopReason.ERROR, Stats(stop_reason=StopReason.ERROR), error=str(exc))
            return
        if self.cancelled:
            self._stream.cancel()
        meter, parser = self.meter, self.worker.codec.parser(self.header)
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
            read_at = time.monotonic()
            for token in chunk:
                last = token
                for event in parser.feed(token):
                    meter.saw(event)
                    yield event
                meter.count(parser)
            rest = READ_TICK_S - (time.monotonic() - read_at)
            if rest > 0 and not self._stream.closed:
                time.sleep(rest)
        reason, error = self._stop_reason(last, timed_out)
        if self._stream.finish_reason == StopReason.ERROR and not timed_out:
            self.worker.health.failed()
        elif reason in (StopReason.RETURN, StopReason.CALL, StopReason.LENGTH):
            self.worker.health.served()
        for event in parser.finish():
            meter.saw(event)
            yield event
        if reason == StopReason.CALL and not (parser.messages and parser.messages[-1].get("recipient")):
            # `<|call|>` closing a message to no one is an answer's end: a server's grammar allows either
            # end token where the answer may end (llama.cpp's end-of-generation ids are both)
            reason = StopReason.RETURN
        if (fmt is not None and reason == StopReason.RETURN) or (strict and reason == StopReason.CALL):
            reason, error = self._checked(fmt, strict, parser.messages, reason)
        stats = meter.finish(reason, self._stream.usage)
        stats.context_tokens = len(self.prompt) + stats.total_tokens
        stats.context_window = self.worker.window
        yield Done(reason, stats, error=error, malformed=parser.malformed,
                   harmony_messages=tuple(parser.messages))

    def _checked(self, fmt, strict: dict, messages: list[dict], reason: StopReason):
        """A structured answer that does not match its format, or a call to a strict function whose
        arguments do not match its parameters, ends as an error, never as plain text or as that call. Under
        the app's own constraint it cannot happen; an inference server is trusted no further than this."""
        if reason == StopReason.CALL:
            call = messages[-1] if messages else {}
            if call.get("recipient") not in strict:
                return reason, None  # a call to a function that is not strict
            wrong = answer_mismatch(ResponseFormat(schema=strict[call["recipient"]]), message_text(call))
            what = f"The call to {call['recipient']} does not match the function's parameters (strict)"
            then = "Try again."
        else:
            answer = next((m for m in reversed(messages) if m.get("channel") == "final" and not m.get("recipient")), {})
            wrong = answer_mismatch(fmt, message_text(answer))
            what, then = "The answer does not match the response format", \
                'Try again, or send response_format {"type": "text"}.'
        if wrong is None:
            return reason, None
        who = "the model" if self.worker.engine.description.constraints else "the inference server"
        return StopReason.ERROR, f"{what} ({wrong}): {who} did not keep to it. {then}"

    def _stop_reason(self, last: int | None, timed_out: bool) -> tuple[StopReason, str | None]:
        """The one mapping from how the engine's stream closed to how the turn ended."""
        finish, error = self._stream.finish_reason, self._stream.error
        if timed_out:
            return StopReason.ERROR, f"Stopped after the time limit of {self.worker.time_limit_s:.0f} s."
        if finish == StopReason.STOPPED:
            return StopReason.STOPPED, None
        if finish == StopReason.ERROR:
            return StopReason.ERROR, error or "The model failed while generating."
        if finish == StopReason.LENGTH:
            return StopReason.LENGTH, None
        return (StopReason.CALL if last == self.worker.codec.call_id else StopReason.RETURN), None


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

    @property
    def reasoning_time(self) -> float | None:
        if self.reason_start is None or self.reason_end is None:
            return None
        return self.reason_end - self.reason_start

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

"""The one engine interface: token ids in, token ids out, cancellable.

Engines know nothing of harmony or Gradio. The worker renders a prompt to ids,
submits it with the stop ids, reads chunks of new ids and may cancel.
Engines are chosen in one place, backend/engines/choose.py, with lazy imports so
that the OpenAI-compatible engine never imports torch and vice versa.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable, Protocol

from core.config import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, MODEL_WINDOW
from core.events import StopReason


@dataclass(frozen=True)
class EngineInfo:
    """What is running, as the page's banner and the API say it: a typed record, so that a service asks
    `info.demo`, never a dict for a key that may be missing."""

    model: str = "?"
    engine: str = "?"
    quantization: str = "?"
    device: str = "?"
    notice: str = ""
    process: str = ""  # "own process (pid N)" when the model runs in a child process
    demo: bool = False  # the bundled demo model: python is its one tool, it has its own temperature
    messages_only: bool = False  # a server that renders the prompt from chat messages: no built-in tools
    top_p: bool = False  # nucleus sampling per request (a server does it; in-process batching does not)
    constraints: bool = False  # constrained decoding per request (SamplingParams.constraint: structured output)
    # the server applies a response format itself (ChatPrompt.response_format): chat mode and Ollama
    server_formats: bool = False
    # the server holds a request to a grammar of the whole completion (SamplingParams.constraint.gbnf()):
    # llama.cpp in token mode
    server_grammars: bool = False
    # tokens one request may hold, prompt and answer: the model's window, or less where the engine's
    # cache is smaller (the in-process model's continuous-batching blocks x block size)
    context: int = MODEL_WINDOW

    def with_(self, **changes) -> "EngineInfo":
        return replace(self, **changes)


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling (defaults: gpt-oss's recommended temperature 1.0, top_p 1.0)."""

    max_new_tokens: int
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    # what may come next, per token: an object whose start() gives one with allowed(generated ids) -> a
    # bitmask of the ids allowed, or None for any (backend/harmony/structured.py); only engines whose
    # description says `constraints` take one
    constraint: object | None = None


class TokenStream:
    """What `Engine.submit` returns: token ids fed by the engine, read by one consumer.

    The engine calls `push` with new ids and `close` once; the consumer calls `read` until it
    returns None, and may call `cancel` from any thread. A read takes every id pushed since the
    last one: a consumer that reads a few times a second wakes a few times a second, however fast
    the engine is (each wake-up of a thread costs the whole server some interpreter time).
    """

    def __init__(self, on_cancel: Callable[[], None] | None = None):
        self._pending: deque[list[int]] = deque()
        self._ended = False  # close() was called: read() returns None once the pending ids are read
        self._cond = threading.Condition()
        self._on_cancel = on_cancel
        self.closed = False
        self.finish_reason: StopReason | None = None
        self.error: str | None = None
        self.n_tokens = 0
        self.usage: dict | None = None  # the server's own figures, when an engine has them

    # engine side
    def push(self, ids: list[int]) -> None:
        if ids and not self.closed:
            with self._cond:
                self.n_tokens += len(ids)
                self._pending.append(list(ids))
                self._cond.notify()

    def close(self, reason: StopReason, error: str | None = None) -> bool:
        """Close the stream once; later calls (e.g. a cancel racing a stop) are ignored."""
        with self._cond:
            if self.closed:
                return False
            self.closed = True
            self.finish_reason, self.error = reason, error
            self._ended = True
            self._cond.notify()
        return True

    # consumer side
    def read(self, timeout: float | None = None) -> list[int] | None:
        """Every id pushed since the last read (waiting for some), or None at the end. Raises
        queue.Empty on timeout."""
        with self._cond:
            if not self._pending and not self._ended:
                if not self._cond.wait_for(lambda: self._pending or self._ended, timeout):
                    raise queue.Empty
            if not self._pending:
                return None
            ids = [i for chunk in self._pending for i in chunk]
            self._pending.clear()
            return ids

    def cancel(self) -> None:
        if self.close(StopReason.STOPPED) and self._on_cancel is not None:
            self._on_cancel()


class Engine(Protocol):
    """Anything that turns prompt ids into streamed ids."""

    description: EngineInfo  # what is running, shown on the page (model, quantization, notice)

    def submit(self, prompt_ids: list[int], params: SamplingParams, stop_ids: list[int],
               chat=None) -> TokenStream:
        """`chat` is the same conversation as OpenAI chat messages (backend.harmony.bridge.ChatPrompt),
        for engines whose server only takes messages; engines that take ids ignore it."""

    def close(self) -> None: ...

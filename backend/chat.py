"""Chat logic between the page, the database and the worker: plain data in and out.

Every turn follows the same path: clean the input, commit the user's message,
commit an empty assistant message marked `streaming`, stream events into it
(saving every couple of seconds), then record how it ended. A crash at any
point leaves what was said in the database.
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Iterator

from backend.harmony.codec import PromptSettings, Turn
from backend.worker import ChatRequest
from core.config import (
    DEFAULT_EFFORT,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_TEMPERATURE,
    EFFORTS,
    MAX_INSTRUCTIONS_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_NEW_TOKENS_LIMIT,
    SAVE_INTERVAL_S,
    TEMPERATURE_RANGE,
)
from core.errors import InputError
from core.events import Answer, Done, Preamble, Reasoning, ToolCall
from core.records import MessageStatus, MessageView
from storage.repository import Repository

log = logging.getLogger(__name__)

_CLAIM = object()  # a conversation's answer is requested but its stream has not started yet
STREAM_INTERVAL_S = 0.05  # at most 20 page updates a second, however fast tokens come
ALLOWED_CONTROL = {"\n", "\t"}


@dataclass
class ChatOptions:
    effort: str = DEFAULT_EFFORT
    instructions: str = ""
    temperature: float = DEFAULT_TEMPERATURE
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS


@dataclass
class Snapshot:
    """What the page shows: the stored history plus the answer being written."""

    conversation_id: str
    history: list[MessageView]  # the same list object for a whole stream
    live: MessageView | None = None
    done: bool = False


def clean_text(text: str, limit: int = MAX_MESSAGE_CHARS, what: str = "message") -> str:
    """Drop NUL and other control characters, replace lone surrogates, enforce the limit."""
    text = (text or "").encode("utf-8", errors="replace").decode("utf-8")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in ALLOWED_CONTROL or unicodedata.category(ch) != "Cc")
    if len(text) > limit:
        raise InputError(f"Your {what} is {len(text):,} characters long; the limit is {limit:,}. "
                         "Please shorten it.")
    return text


def check_options(options: ChatOptions) -> ChatOptions:
    if options.effort not in EFFORTS:
        raise InputError(f"Reasoning effort must be one of {', '.join(EFFORTS)}.")
    low, high = TEMPERATURE_RANGE
    if not low <= float(options.temperature) <= high:
        raise InputError(f"Temperature must be between {low} and {high}.")
    if not 1 <= int(options.max_new_tokens) <= MAX_NEW_TOKENS_LIMIT:
        raise InputError(f"Max new tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT:,}.")
    instructions = clean_text(options.instructions, MAX_INSTRUCTIONS_CHARS, "instructions")
    return replace(options, instructions=instructions, temperature=float(options.temperature),
                   max_new_tokens=int(options.max_new_tokens))


def _turns(messages: list[MessageView]) -> list[Turn]:
    turns = []
    for m in messages:
        if m.role == "assistant" and not m.content and not m.harmony:
            continue  # an answer that never came (error, stopped in reasoning) is not sent back
        turns.append(Turn(m.role, m.content, m.reasoning, m.harmony))
    return turns


class ChatService:
    def __init__(self, repo: Repository, host, max_message_chars: int = MAX_MESSAGE_CHARS,
                 save_interval_s: float = SAVE_INTERVAL_S):
        self.repo, self.host, self.max_message_chars = repo, host, max_message_chars
        self.save_interval_s = save_interval_s
        self._jobs: dict[str, object] = {}
        self._lock = threading.Lock()

    # -- turns -----------------------------------------------------------------------

    def _message_and_options(self, text: str, options: ChatOptions, empty: str) -> tuple[str, ChatOptions]:
        """The opening steps of every turn that brings a new user message (send, edit)."""
        text = clean_text(text, self.max_message_chars)
        if not text.strip():
            raise InputError(empty)
        return text, check_options(options)

    def send(self, owner: str, conversation_id: str | None, text: str,
             options: ChatOptions) -> Iterator[Snapshot]:
        text, options = self._message_and_options(text, options, "Type a message first.")
        if conversation_id:
            self.repo.get(owner, conversation_id)  # not found for anyone else's, before any claim
        else:
            conversation_id = self.repo.create_conversation(owner, text)  # titled by its first line
        with self._claimed(conversation_id):
            self.repo.add_message(owner, conversation_id, "user", text)  # committed before the model runs
            self.repo.update_settings(owner, conversation_id, options.__dict__)
            return self._answer(owner, conversation_id, options)

    def regenerate(self, owner: str, conversation_id: str, options: ChatOptions) -> Iterator[Snapshot]:
        """Drop the last answer (if any) and answer the last user message again."""
        options = check_options(options)
        self.repo.get(owner, conversation_id)
        with self._claimed(conversation_id):
            users = [m for m in self.repo.get(owner, conversation_id).messages if m.role == "user"]
            if not users:
                raise InputError("There is no message to answer yet.")
            self.repo.truncate(owner, conversation_id, users[-1].position + 1)
            return self._answer(owner, conversation_id, options)

    def edit(self, owner: str, conversation_id: str, position: int, text: str,
             options: ChatOptions) -> Iterator[Snapshot]:
        """Replace an earlier user message and answer again from there."""
        text, options = self._message_and_options(text, options, "An edited message cannot be empty.")
        self.repo.get(owner, conversation_id)
        with self._claimed(conversation_id):
            conv = self.repo.get(owner, conversation_id)
            target = next((m for m in conv.messages if m.position == position and m.role == "user"), None)
            if target is None:
                raise InputError("Only your own messages can be edited.")
            self.repo.truncate(owner, conversation_id, position)
            self.repo.add_message(owner, conversation_id, "user", text)
            return self._answer(owner, conversation_id, options)

    def stop(self, owner: str, conversation_id: str | None) -> bool:
        """Stop the answer being written in this conversation (only the owner's)."""
        if not conversation_id:
            return False
        self.repo.get(owner, conversation_id)  # raises NotFound for anyone else's
        with self._lock:
            job = self._jobs.get(conversation_id)
        if job is None or job is _CLAIM:
            return False
        job.cancel()
        return True

    # -- streaming -------------------------------------------------------------------------

    @contextmanager
    def _claimed(self, conversation_id: str):
        """Hold the conversation's one answer from the request on, so two tabs sending at the same
        instant cannot both pass. `_stream` takes the claim over (and frees it when it ends); any
        failure before that frees it here."""
        with self._lock:
            if conversation_id in self._jobs:
                raise InputError("An answer is still being written in this conversation: stop it or wait.")
            self._jobs[conversation_id] = _CLAIM
        try:
            yield
        except BaseException:
            with self._lock:
                if self._jobs.get(conversation_id) is _CLAIM:
                    del self._jobs[conversation_id]
            raise

    def _answer(self, owner: str, conversation_id: str, options: ChatOptions) -> Iterator[Snapshot]:
        history = self.repo.get(owner, conversation_id).messages
        worker = self.host.worker()  # raises a clear error while loading; the user message is kept
        settings = PromptSettings(effort=options.effort, instructions=options.instructions)
        job = worker.submit(ChatRequest(_turns(history), settings, options.temperature, options.max_new_tokens))
        try:
            mid = self.repo.add_message(owner, conversation_id, "assistant", "", status=MessageStatus.STREAMING,
                                        effort=options.effort)
        except BaseException:
            job.discard()  # its stream will never run: give the worker slot back now
            raise
        live = MessageView(id=mid, position=len(history), role="assistant", content="",
                           effort=options.effort, status=MessageStatus.STREAMING)
        return self._stream(owner, conversation_id, history, live, job)

    def _stream(self, owner, conversation_id, history, live, job) -> Iterator[Snapshot]:
        with self._lock:
            self._jobs[conversation_id] = job
        finished = False
        try:
            yield Snapshot(conversation_id, history, live)
            last_save = last_yield = time.monotonic()
            for event in job.events():
                if isinstance(event, Answer) and live.reasoning_time is None:
                    live.reasoning_time = job.reasoning_time  # the worker's clock: "Thought for N s" at once
                phase = _apply(live, event)
                if isinstance(event, Done):
                    self._finish(owner, live, event)
                    finished = True
                    break
                now = time.monotonic()
                if now - last_save >= self.save_interval_s or (phase and isinstance(event, Answer)):
                    # also right when the answer starts: the whole reasoning is then safe
                    self._save_partial(owner, live)
                    last_save = now
                if phase or now - last_yield >= STREAM_INTERVAL_S:
                    last_yield = now
                    yield Snapshot(conversation_id, history, live)
            yield Snapshot(conversation_id, history, live, done=True)
        finally:
            with self._lock:
                if self._jobs.get(conversation_id) is job:
                    del self._jobs[conversation_id]
            if not finished:  # the page went away mid-answer: keep what we have
                job.cancel()
                live.status = MessageStatus.STOPPED
                self._save_partial(owner, live, status=MessageStatus.STOPPED)

    def _save_partial(self, owner: str, live: MessageView, **extra) -> None:
        try:
            self.repo.save_message(owner, live.id, content=live.content, reasoning=live.reasoning,
                                   trace=live.trace, **extra)
        except Exception:  # a failed periodic save must not kill the stream
            log.exception("saving a partial answer failed")

    def _finish(self, owner: str, live: MessageView, done: Done) -> None:
        s = done.stats
        live.status = MessageStatus.after(done.stop_reason)
        live.stop_reason, live.error = done.stop_reason, done.error
        live.reasoning_tokens, live.answer_tokens = s.reasoning_tokens, s.answer_tokens
        live.ttft, live.reasoning_time, live.tokens_per_s = s.ttft, s.reasoning_time, s.tokens_per_s
        live.harmony = list(done.harmony_messages)
        self.repo.save_message(owner, live.id, content=live.content, reasoning=live.reasoning, trace=live.trace,
                               harmony=live.harmony, status=live.status, stop_reason=live.stop_reason,
                               error=live.error, reasoning_tokens=s.reasoning_tokens, answer_tokens=s.answer_tokens,
                               ttft=s.ttft, reasoning_time=s.reasoning_time, tokens_per_s=s.tokens_per_s)


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

"""The records every layer passes around: messages, conversations, search hits, share links.

Storage returns them, services hand them on, the page and the share page render them. They are
plain dataclasses (never live ORM objects), so no layer above storage needs to import storage.
`MessageStatus` is how an answer stands; `MessageStatus.after` is the one mapping from how a
stream ended (core.events.StopReason) to how its message is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from core.events import StopReason
from core.trace import ToolResultStep


class MessageStatus(StrEnum):
    STREAMING = "streaming"  # being generated right now
    COMPLETE = "complete"
    STOPPED = "stopped"
    ERROR = "error"
    INTERRUPTED = "interrupted"  # was streaming when the process died

    @classmethod
    def after(cls, stop: StopReason | str) -> "MessageStatus":
        """How a message is stored once its stream ended for `stop`."""
        return {StopReason.STOPPED: cls.STOPPED, StopReason.ERROR: cls.ERROR}.get(StopReason(stop), cls.COMPLETE)

    @property
    def note(self) -> str:
        """The few words a reader sees beside an answer that did not simply complete ("" if it did)."""
        return STATUS_NOTES.get(self, "")


STATUS_NOTES = {MessageStatus.STREAMING: "writing…", MessageStatus.STOPPED: "stopped by the user",
                MessageStatus.ERROR: "failed", MessageStatus.INTERRUPTED: "interrupted (the server restarted)"}


def status_note(status: str | None, stop_reason: str | None = None) -> str:
    """The page's and the share page's one wording for how an answer ended."""
    note = MessageStatus(status).note if status in MessageStatus._value2member_map_ else ""
    if not note and stop_reason == StopReason.LENGTH:
        return "cut off at the token limit"
    return note


def no_answer_note(m: "MessageView") -> str | None:
    """What the page and the share page say where an answer ended with no final text (only reasoning, or
    nothing): never an empty bubble. None while it is being written, when it has text, or when it stopped
    for another reason that is already said (a tool call waiting, Stop, an error)."""
    if m.role != "assistant" or m.content or m.error or m.status != MessageStatus.COMPLETE:
        return None
    if m.stop_reason == StopReason.LENGTH:
        return ("The model reached the token limit before it answered: raise Max new tokens (Settings) or use a "
                "lower effort, then Regenerate.")
    if m.stop_reason == StopReason.CALL:
        return None  # paused on a call to one of your functions: its result is asked for
    return "The model ended without an answer (it wrote only its reasoning). Regenerate to try again."


def malformed_note(m: "MessageView") -> str | None:
    """What the page and the share page say under an answer whose model output was partly not valid harmony
    (its control tokens never show as text: what could be read is shown, and this says the rest was lost)."""
    if m.role != "assistant" or not m.malformed:
        return None
    return "Part of the model's output was malformed (not valid harmony): this shows what could be read of it."


@dataclass
class MessageView:
    id: int
    position: int
    role: str
    content: str
    reasoning: str = ""
    reasoning_summary: str = ""  # --reasoning-display summary: what users see of the reasoning
    trace: list = field(default_factory=list)
    harmony: list = field(default_factory=list)
    effort: str | None = None
    status: str = MessageStatus.COMPLETE
    error: str | None = None
    stop_reason: str | None = None
    reasoning_tokens: int | None = None
    answer_tokens: int | None = None
    ttft: float | None = None
    reasoning_time: float | None = None
    tokens_per_s: float | None = None
    context_tokens: int | None = None  # what the last generation held: its prompt and its output
    context_window: int | None = None  # what the engine could hold for it
    left_out: int | None = None  # the earliest messages not in the prompt (the conversation outgrew the window)
    malformed: bool | None = None  # part of the model's output was not valid harmony (shown as far as it was read)
    created: str = ""
    parent_id: int | None = None  # the message this one follows in the conversation's tree (storage/tree.py)
    # on a branch read from storage: this message and its siblings (other answers, other edits), oldest
    # first; the page shows "‹ i / n ›" when there is more than one
    siblings: list[int] = field(default_factory=list)

    @property
    def seconds_to_answer(self) -> float | None:
        """From the request to the answer's first token: the first token's wait, the thinking and the tools'
        time (the later steps' prefill after a tool call is not stored apart, so it counts as thinking's).
        None without an answer."""
        if not self.content or (self.ttft is None and self.reasoning_time is None):
            return None
        tools = sum(s.seconds or 0 for s in self.trace or () if isinstance(s, ToolResultStep))
        return (self.ttft or 0.0) + (self.reasoning_time or 0.0) + tools

    @property
    def branch_index(self) -> int:
        """Which of its siblings this message is, from 1 (0 when not known)."""
        return self.siblings.index(self.id) + 1 if self.id in self.siblings else 0


@dataclass
class ConversationView:
    id: str
    title: str
    created: str
    updated: str
    settings: dict
    messages: list[MessageView] = field(default_factory=list)
    leaf_id: int | None = None  # the last message of the branch shown
    # a comparison still to choose from: the branch shown ends at a user message, and these are its
    # answers (one per effort, oldest first); empty otherwise
    compared: list[MessageView] = field(default_factory=list)


@dataclass
class SearchHit:
    conversation_id: str
    title: str
    message_id: int
    role: str
    snippet: str


@dataclass
class ShareLink:
    token: str
    conversation_id: str
    title: str
    created: str
    expires: str | None
    include_reasoning: bool


@dataclass
class SharedConversation:
    title: str
    created: str
    include_reasoning: bool
    messages: list[MessageView] = field(default_factory=list)

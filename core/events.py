"""Typed events that flow from the worker to the page and the database.

Reasoning is data, not markup: the analysis channel, the final answer, the
preambles and the tool calls travel as different event types all the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class StopReason(StrEnum):
    """How a run ended: the one vocabulary from the engine to the database. An engine's token stream
    closes with STOP_ID (a stop id came), LENGTH, STOPPED or ERROR; the worker, which knows harmony, turns
    STOP_ID into RETURN or CALL by which id it was. A stored message's status follows from it
    (core.records.MessageStatus.after); the APIs translate it into their own finish_reason."""

    RETURN = "return"  # <|return|>: a final answer
    CALL = "call"  # <|call|>: a tool call
    STOP_ID = "stop_id"  # (engines only) one of the stop ids came; the worker says which
    LENGTH = "length"
    STOPPED = "stopped"  # cancelled: Stop, or the client went away
    ERROR = "error"


@dataclass(frozen=True)
class Reasoning:
    """A delta of the analysis channel."""

    text: str
    malformed: bool = False
    kind: str = "reasoning"


@dataclass(frozen=True)
class Answer:
    """A delta of the final channel (or text that could not be parsed)."""

    text: str
    malformed: bool = False
    kind: str = "answer"


@dataclass(frozen=True)
class Preamble:
    """A delta of the commentary channel without recipient: meant for the user."""

    text: str
    malformed: bool = False
    kind: str = "preamble"


@dataclass(frozen=True)
class ToolCall:
    """A complete message to a recipient such as `functions.get_weather`."""

    recipient: str
    arguments: str
    content_type: str | None = None
    malformed: bool = False
    kind: str = "tool_call"


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returned (the agent ran it between two generations of the same turn)."""

    recipient: str
    output: str
    status: str = "ok"  # ok | error | timeout | stopped | killed
    seconds: float | None = 0.0  # None: not run here (the user typed the result of their own function)
    summary: str = ""  # a few words for the trace heading ("5 results")
    pages: tuple = ()  # browser pages shown: {cursor, title, url}, for citations
    kind: str = "tool_result"


@dataclass(frozen=True)
class StepEnd:
    """One generation of a turn ended (a turn with tool calls has several)."""

    reasoning_tokens: int = 0
    answer_tokens: int = 0
    kind: str = "step_end"


@dataclass
class Stats:
    """What every request reports (times in seconds)."""

    ttft: float | None = None
    reasoning_time: float | None = None
    reasoning_tokens: int = 0
    answer_tokens: int = 0
    total_tokens: int = 0
    tokens_per_s: float | None = None
    stop_reason: str = ""
    tool_calls: int = 0
    tool_time: float = 0.0  # seconds spent running tools, apart from the model's time
    context_tokens: int | None = None  # the (last) generation's prompt and output: the context it used
    context_window: int | None = None  # what the engine could hold for it

    def message_fields(self) -> dict:
        """The figures a stored answer keeps (its message's columns)."""
        return {"reasoning_tokens": self.reasoning_tokens, "answer_tokens": self.answer_tokens, "ttft": self.ttft,
                "reasoning_time": self.reasoning_time, "tokens_per_s": self.tokens_per_s,
                "context_tokens": self.context_tokens, "context_window": self.context_window}


@dataclass(frozen=True)
class Done:
    """The last event of every stream."""

    stop_reason: StopReason
    stats: Stats = field(default_factory=Stats)
    error: str | None = None
    malformed: bool = False
    # The assistant's messages in harmony form (Message.to_dict()), so the
    # conversation can be continued exactly.
    harmony_messages: tuple = ()
    kind: str = "done"


Event = Reasoning | Answer | Preamble | ToolCall | ToolResult | StepEnd | Done

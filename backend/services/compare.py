"""Compare efforts: one message answered at low, medium and high at once, as three sibling answers.

A comparison is a turn of several answers (backend/serving/turns.py), one per effort, each a LiveAnswer
written beside the others in the same batching worker. Until the user keeps one ("Continue with this
one"), the branch shown ends at the question and the answers hang below it (ConversationView.compared),
so a reload, another tab or another device shows the comparison again. Here: what a comparison is as
data, and the figures its chart compares — plain data, drawn by ui/compare_panel.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.config import EFFORTS
from core.records import MessageStatus, MessageView
from core.trace import ToolCallStep

PICK_FIRST = ("Keep one of the compared answers first (“Continue with this one” under it), or Regenerate at "
              "one effort: then send your message.")


@dataclass
class Comparison:
    """A comparison just started: its conversation, the branch up to the question, one Watch per effort."""

    conversation_id: str
    history: list[MessageView]
    watches: list = field(default_factory=list)


@dataclass(frozen=True)
class EffortFigures:
    """What the chart compares for one effort, as the answer is written and once it ended."""

    effort: str
    reasoning_tokens: int
    seconds_to_answer: float | None  # from the request to the answer's first token (None: no answer)
    tool_calls: int
    tokens_per_s: float | None
    writing: bool


def newest_per_effort(answers: list[MessageView]) -> list[MessageView]:
    """A comparison's answers as its columns: the newest answer at each effort, low to high (a message
    compared twice keeps both comparisons as siblings; the last one is shown)."""
    newest = {m.effort: m for m in answers}  # oldest first: later ones win
    return [newest[e] for e in EFFORTS if e in newest]


def figures(m: MessageView, turn=None, now: float | None = None) -> EffortFigures:
    """An answer's figures: while it is written, from its LiveAnswer (`turn`: reasoning deltas so far and
    the time since it started); once ended, from its stored stats."""
    calls = sum(isinstance(s, ToolCallStep) for s in m.trace or ())
    writing = m.status == MessageStatus.STREAMING
    if writing and turn is not None and turn.started_at is not None:
        end = turn.answered_at or (time.monotonic() if now is None else now)
        return EffortFigures(m.effort or "?", turn.reasoning_seen, max(end - turn.started_at, 0.0), calls, None,
                             True)
    return EffortFigures(m.effort or "?", m.reasoning_tokens or 0, m.seconds_to_answer, calls, m.tokens_per_s,
                         writing)

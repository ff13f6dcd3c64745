"""The trace of an answer: its steps in order, as typed records.

One writer folds a turn's events into them (backend/serving/live.py, `Steps`); the reasoning policy
(backend/services/policy.py) and a function's result typed by the user add to them the same way. They
become JSON in exactly one place, here (`to_json` / `from_json`), used by storage for the database, the
exports and share snapshots; every other reader takes the types.

A reasoning step holds offsets into its message's reasoning text (never a copy), so a message without
reasoning (a share that leaves it out, a hidden policy) has nothing of it to leak.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar


@dataclass
class ReasoningStep:
    """Thoughts of one generation: message.reasoning[start:end]."""

    kind: ClassVar[str] = "reasoning"
    start: int = 0
    end: int = 0
    seconds: float | None = None
    tokens: int | None = None
    hidden: bool = False  # --reasoning-display hidden: this marker stands where the reasoning was
    summary: bool = False  # --reasoning-display summary: the turn's summary stands here
    writing: bool = False  # (summary) still to come or being written


@dataclass
class PreambleStep:
    """Words to the user on the commentary channel, before a tool call."""

    kind: ClassVar[str] = "preamble"
    text: str = ""
    closed: bool = False  # a tool call followed: later commentary is a new preamble


@dataclass
class ToolCallStep:
    """A call as the model wrote it: `python`, `browser.search`, `functions.get_weather`..."""

    kind: ClassVar[str] = "tool_call"
    recipient: str = "?"
    arguments: str = ""


@dataclass
class ToolResultStep:
    """What a call returned. `seconds` is None for a result the user typed (their own function)."""

    kind: ClassVar[str] = "tool_result"
    recipient: str = "?"
    output: str = ""
    status: str = "ok"  # ok | error | timeout | stopped | killed
    seconds: float | None = None
    summary: str = ""  # a few words for the heading ("5 results")
    pages: list[dict] = field(default_factory=list)  # browser pages shown: {cursor, title, url}, for citations

    @property
    def ok(self) -> bool:
        return self.status == "ok"


Step = ReasoningStep | PreambleStep | ToolCallStep | ToolResultStep
KINDS: dict[str, type] = {t.kind: t for t in (ReasoningStep, PreambleStep, ToolCallStep, ToolResultStep)}


def copy_step(step: Step) -> Step:
    """A copy that shares nothing mutable with the original (pages are copied too)."""
    values = {f.name: getattr(step, f.name) for f in fields(step)}
    if isinstance(step, ToolResultStep):
        values["pages"] = [dict(p) for p in step.pages]
    return type(step)(**values)


def to_json(trace: list[Step]) -> list[dict]:
    """The trace as stored and exported: one object per step with its `kind`."""
    return [{"kind": step.kind, **{f.name: getattr(step, f.name) for f in fields(step)}} for step in trace]


def from_json(entries: list[dict] | None) -> list[Step]:
    """Stored steps back as records. Keys a step does not know (older versions) are dropped, missing
    ones take their defaults, and an entry of an unknown kind is skipped rather than failing the read."""
    steps = []
    for entry in entries or []:
        kind = KINDS.get(entry.get("kind")) if isinstance(entry, dict) else None
        if kind is not None:
            known = {f.name for f in fields(kind)}
            steps.append(kind(**{k: v for k, v in entry.items() if k in known}))
    return steps

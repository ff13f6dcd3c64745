"""The deployment's reasoning display policy (--reasoning-display), applied where data leaves the
services: the page's snapshots and conversations, the API, share links, exports and search.

- raw: the reasoning as the model wrote it (a local single user; a researcher);
- summary: a short summary the same model writes at low effort after the answer (backend/services/summary.py),
  in place of the reasoning; the raw text stays on the server;
- hidden: nothing of it, only that there was some: each reasoning step becomes a marker that the
  page titles "Reasoning hidden by this deployment · N tokens · M s".

gpt-oss's model card says its raw chain of thought is not meant for end users; OpenAI's cookbook
(handle-raw-cot) recommends showing a summary. With `--hidden-reasoning drop` the raw reasoning is
not stored either (the model still reads it within a turn in progress, as harmony requires).
"""

from __future__ import annotations

from dataclasses import replace

from core.records import MessageView
from core.trace import ReasoningStep


def _figures(entries: list[ReasoningStep], m: MessageView) -> tuple[int | None, float | None]:
    """Tokens and seconds of a turn's reasoning: summed over its steps, or the message's own."""
    tokens = [e.tokens for e in entries if e.tokens]
    seconds = [e.seconds for e in entries if e.seconds is not None]
    return (sum(tokens) if tokens else m.reasoning_tokens), (sum(seconds) if seconds else m.reasoning_time)


def _without_analysis(harmony: list[dict]) -> list[dict]:
    return [h for h in harmony if h.get("channel") != "analysis"]


class ReasoningPolicy:
    def __init__(self, display: str = "raw", hidden_reasoning: str = "keep"):
        self.display, self.keep = display, hidden_reasoning == "keep" or display == "raw"

    @property
    def raw(self) -> bool:
        return self.display == "raw"

    @property
    def summarize(self) -> bool:
        return self.display == "summary"

    def stored(self, reasoning: str) -> str:
        """What the database keeps of a turn's raw reasoning."""
        return reasoning if self.keep else ""

    def stored_harmony(self, harmony: list[dict]) -> list[dict]:
        return list(harmony) if self.keep else _without_analysis(harmony)

    def view(self, m: MessageView, writing: bool = False) -> MessageView:
        """The message as users may see it. `writing`: its summary is still to come or being written."""
        if self.raw or m.role != "assistant":
            return m
        thoughts = [e for e in m.trace if isinstance(e, ReasoningStep)]
        if not thoughts and not m.reasoning and not m.reasoning_summary and not m.reasoning_tokens:
            return replace(m, reasoning="", reasoning_summary="", harmony=self.shown_harmony(m.harmony))
        tokens, seconds = _figures(thoughts, m)
        if self.display == "hidden":  # each reasoning step keeps its place and its own figures
            text, markers = "", [ReasoningStep(hidden=True, tokens=e.tokens if len(thoughts) > 1 else tokens,
                                               seconds=e.seconds if len(thoughts) > 1 else seconds) for e in thoughts]
        else:  # one summary of the whole turn, where its reasoning began
            # a copy of a shared summary holds the summary as its reasoning, already marked as one
            text = m.reasoning_summary or (m.reasoning if any(e.summary for e in thoughts) else "")
            markers = [ReasoningStep(end=len(text), summary=True, writing=writing, tokens=tokens, seconds=seconds)]
        if not thoughts:  # stored before steps were: the reasoning comes first
            trace = markers[:1] + list(m.trace)
        else:
            trace, queue = [], list(markers)
            for e in m.trace:
                if not isinstance(e, ReasoningStep):
                    trace.append(e)
                elif queue:
                    trace.append(queue.pop(0))
        return replace(m, reasoning=text, reasoning_summary="", trace=trace, harmony=self.shown_harmony(m.harmony))

    def views(self, messages: list[MessageView]) -> list[MessageView]:
        return messages if self.raw else [self.view(m) for m in messages]

    def shown_harmony(self, harmony: list[dict]) -> list[dict]:
        """harmony messages without the analysis channel (the raw reasoning is in there too)."""
        return list(harmony) if self.raw else _without_analysis(harmony)

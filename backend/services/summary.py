"""A short summary of a turn's reasoning, written by the same engine at low effort, for
--reasoning-display summary. It runs after the answer (never delaying it), through the same worker
and batching, and streams: the page and the API show it as it is written."""

from __future__ import annotations

from typing import Callable, Iterator

from backend.harmony.codec import PromptMessage, PromptSettings
from backend.serving.worker import ChatRequest
from core.errors import ChatError
from core.events import Answer, Done, StopReason

SUMMARY_TOKENS = 400  # the summary's own budget (its reasoning at low effort included)
MAX_REASONING_CHARS = 24_000  # longer reasoning is summarized from its start and its end
INSTRUCTIONS = ("You summarize an assistant's private reasoning for the person it answered. Write two to four "
                "plain sentences on what it considered and how it decided. Do not quote it, do not add facts, "
                "do not answer the question yourself.")


def summary_request(reasoning: str) -> ChatRequest:
    if len(reasoning) > MAX_REASONING_CHARS:
        half = MAX_REASONING_CHARS // 2
        reasoning = reasoning[:half] + "\n[...]\n" + reasoning[-half:]
    turn = PromptMessage("user", "Summarize this reasoning:\n\n" + reasoning)
    return ChatRequest([turn], PromptSettings(effort="low", instructions=INSTRUCTIONS), temperature=1.0,
                       max_new_tokens=SUMMARY_TOKENS)


class Summarizer:
    """Streams summaries; `submit` is the worker's (so busy refusals are counted like any request)."""

    def __init__(self, submit: Callable[[ChatRequest], object]):
        self.submit = submit

    def stream(self, reasoning: str, started: Callable[[object], None] = lambda job: None) -> Iterator[str]:
        """The summary's text as it is written (its final channel only). `started(job)` hears the job
        so a Stop can cancel it. A busy server or a failure ends it with a note, never an exception."""
        try:
            job = self.submit(summary_request(reasoning))
        except ChatError:
            yield "(No summary: the server was too busy to write one.)"
            return
        started(job)
        wrote = False
        for event in job.events():
            if isinstance(event, Answer) and event.text:
                wrote = True
                yield event.text
        if not wrote:
            yield "(No summary could be written.)"

    def turn(self) -> "TurnSummary":
        return TurnSummary(self)


class TurnSummary:
    """One answer's summary (a page's turn or an API request): written once the answer is done, and
    stopped by `cancel` from any thread, before it starts or while it is written."""

    def __init__(self, summarizer: Summarizer):
        self.summarizer, self.cancelled, self._job = summarizer, False, None

    def cancel(self) -> None:
        self.cancelled = True
        if self._job is not None:
            self._job.cancel()

    def stream(self, reasoning: str, done: Done | None) -> Iterator[str]:
        """Nothing for an answer that was stopped or failed, or had no reasoning."""
        if done is None or done.stop_reason in (StopReason.STOPPED, StopReason.ERROR) or self.cancelled \
                or not reasoning.strip():
            return
        yield from self.summarizer.stream(reasoning, started=self._started)

    def _started(self, job) -> None:
        self._job = job
        if self.cancelled:  # a Stop that came while the job was being submitted
            job.cancel()

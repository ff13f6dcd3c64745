"""What an operator sees and bounds, in one place for the page's turns and the API's: per-user
limits before an answer starts, busy refusals, and each answer's end (tokens, tool calls) into the
audit log and the metrics."""

from __future__ import annotations

from dataclasses import replace

from backend.observability.audit import Audit
from backend.observability.limits import Limits
from backend.observability.metrics import Metrics
from core.errors import BusyError, LimitError
from core.events import Done, Stats, StopReason
from core.trace import ToolResultStep


class Oversight:
    def __init__(self, audit: Audit | None = None, limits: Limits | None = None, metrics: Metrics | None = None):
        self.audit, self.limits, self.metrics = audit or Audit(), limits or Limits(), metrics or Metrics()

    def check(self, owner: str) -> None:
        """Refuse a new answer beyond the user's limits (the message says when to try again)."""
        try:
            self.limits.check(owner)
        except LimitError as exc:
            self.metrics.limited.labels("per_user").inc()
            self.audit.record(owner, "limit", outcome="refused", retry_after_s=round(exc.retry_after_s))
            raise

    def submit(self, worker, request):
        """Submit to the worker, counting refusals when it is full."""
        try:
            return worker.submit(request)
        except BusyError:
            self.metrics.busy.inc()
            raise

    def answered(self, owner: str, conversation_id: str | None, effort: str | None, prompt_tokens: int,
                 done: Done, via: str = "page") -> None:
        """An answer ended (any way): its figures into the audit log and the metrics."""
        self.audit.record(owner, "answer", outcome=str(done.stop_reason), conversation_id=conversation_id,
                          effort=effort, prompt_tokens=prompt_tokens, completion_tokens=done.stats.total_tokens,
                          via=via)
        self.metrics.answered(effort, done, via)

    def tools_ran(self, owner: str, conversation_id: str | None, steps) -> None:
        """The tool calls a turn ran here (not the results a person or a client typed in)."""
        for step in steps:
            if isinstance(step, ToolResultStep) and step.seconds is not None:
                self.audit.record(owner, "tool_call", outcome=step.status, conversation_id=conversation_id,
                                  tool=step.recipient)
                self.metrics.tool_call(step.recipient, step.status)

    def account(self, turn) -> None:
        """A page's turn (a LiveAnswer) ended: its new tool calls and its answer."""
        live = turn.message()
        self.tools_ran(turn.owner, turn.conversation_id, live.trace[turn.first_step:])
        done = turn.ended_with
        if done is None:  # stopped, interrupted or failed before the end: the tokens counted so far
            reason = StopReason(live.stop_reason) if live.stop_reason else StopReason.STOPPED
            done = Done(reason, Stats(reasoning_tokens=live.reasoning_tokens or 0, answer_tokens=live.answer_tokens or 0,
                                      total_tokens=(live.reasoning_tokens or 0) + (live.answer_tokens or 0)))
        elif done.stats.total_tokens == 0 and (done.stats.reasoning_tokens or done.stats.answer_tokens):
            done = replace(done, stats=replace(done.stats, total_tokens=done.stats.reasoning_tokens +
                                               done.stats.answer_tokens))
        self.answered(turn.owner, turn.conversation_id, live.effort, getattr(turn.job, "prompt_tokens", 0), done)

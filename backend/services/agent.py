"""gpt-oss as the agent it was trained to be: generate, run the tool it calls, feed the result
back, generate again, until a final answer.

A turn that stops at `<|call|>` has its call run (outside the engine's batch: the generation's job
has ended and given its decoding slot back, so other chats stream on while a tool runs), the result
appended as harmony specifies (a message authored by the tool, to=assistant, on the call's channel)
and the conversation rendered again with everything the turn has said so far. harmony keeps the
reasoning of a turn in progress across its tool calls and drops it once a final answer follows.
The turn ends with a final answer, at the step limit, on Stop (which also kills a running tool),
at the time limit (which covers the whole turn) or at the token limit (also for the whole turn).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

from backend.harmony.codec import message_text, tool_message
from backend.tools.toolbox import ToolContext, ToolSession
from core.errors import BusyError
from core.events import Done, Event, Stats, StepEnd, StopReason, ToolResult

MAX_TOOL_CALLS = 8  # per turn, unless the deployment says otherwise
BUSY_RETRY_S = 0.2  # a turn between two steps waits for a free slot, it is not refused


class AgentLoop:
    """One turn over several jobs, with the same surface as a Job: events(), cancel(), discard()."""

    def __init__(self, job, resubmit: Callable[[list[dict], int, float], object], tools: ToolSession | None,
                 *, max_tool_calls: int = MAX_TOOL_CALLS, time_limit_s: float, max_new_tokens: int,
                 prior: list[dict] = ()):
        self.job, self._resubmit, self.tools = job, resubmit, tools
        self.prompt_tokens = len(getattr(job, "prompt", ()))  # every step reads its whole prompt again
        self.prior = list(prior)  # the turn's steps before a pause (a user function's result came in)
        self.left_out = 0  # the oldest turns its prompts leave out (a conversation longer than the window)
        self.max_tool_calls, self.max_new_tokens = max_tool_calls, max_new_tokens
        self.deadline = time.monotonic() + time_limit_s
        self.time_limit_s = time_limit_s
        self._cancel = threading.Event()
        self._lock = threading.Lock()

    @property
    def reasoning_time(self) -> float | None:
        return self.job.reasoning_time

    def cancel(self) -> None:
        """Stop: ends the generation or kills the tool that runs now."""
        with self._lock:
            self._cancel.set()
            self.job.cancel()

    def discard(self) -> None:
        self.job.discard()

    def events(self) -> Iterator[Event]:
        messages: list[dict] = list(self.prior)
        steps: list[Stats] = []
        calls, tool_time = sum(1 for m in messages if m.get("role") == "tool"), 0.0
        while True:
            done = yield from self._generate(self.job)
            steps.append(done.stats)
            messages += list(done.harmony_messages)
            yield StepEnd(done.stats.reasoning_tokens, done.stats.answer_tokens)
            call = messages[-1] if done.harmony_messages and messages[-1].get("recipient") else None
            if done.stop_reason != StopReason.CALL or call is None or self._cancel.is_set():
                yield self._end(done.stop_reason, steps, messages, calls, tool_time, done.error, done.malformed)
                return
            if self.tools is not None and self.tools.is_client(call["recipient"]):
                # the user's own function: the turn pauses here, its result comes from the page or the API
                yield self._end(StopReason.CALL, steps, messages, calls, tool_time)
                return
            if calls >= self.max_tool_calls:
                yield ToolResult(call["recipient"], "Not run: the limit of tool calls per turn was reached.",
                                 "error", summary="not run")
                yield self._end(StopReason.ERROR, steps, messages, calls, tool_time,
                                f"The model asked for more than {self.max_tool_calls} tool calls in one turn, the "
                                "limit (--max-tool-calls). Ask again, or more narrowly.")
                return
            calls += 1
            result = self._run_tool(call)
            tool_time += result.seconds
            yield result
            messages.append(tool_message(call["recipient"], call.get("channel"), result.output))
            reason, error = self._next_step(messages, steps)
            if reason is not None:
                yield self._end(reason, steps, messages, calls, tool_time, error)
                return

    # -- steps -------------------------------------------------------------------------------

    def _generate(self, job):
        """Relay one job's events; its Done is the return value. The job's generator is closed
        right away, which gives its decoding slot back before any tool runs."""
        events = job.events()
        try:
            for event in events:
                if isinstance(event, Done):
                    return event
                yield event
        finally:
            events.close()
        return Done(StopReason.STOPPED, Stats(stop_reason=StopReason.STOPPED))

    def _run_tool(self, call: dict) -> ToolResult:
        recipient = call["recipient"]
        arguments = message_text(call)
        started = time.monotonic()
        if self.tools is None:
            output = None
            text, status, summary = f"Error: no tools are enabled in this conversation ({recipient!r}).", "error", \
                "unknown tool"
        else:
            output = self.tools.run(recipient, arguments, ToolContext(self._cancel, self.deadline))
            text, status, summary = output.text, output.status, output.summary
        if self._cancel.is_set() and status == "ok":
            status = "stopped"
        return ToolResult(recipient, text, status, time.monotonic() - started, summary,
                          tuple(output.pages) if output else ())

    def _next_step(self, messages: list[dict], steps: list[Stats]) -> tuple[StopReason | None, str | None]:
        """Submit the next generation (None, None), or say why the turn ends here."""
        while True:
            if self._cancel.is_set():
                return StopReason.STOPPED, None
            left = self.deadline - time.monotonic()
            if left <= 0:
                return StopReason.ERROR, f"Stopped after the time limit of {self.time_limit_s:.0f} s."
            tokens = self.max_new_tokens - sum(s.total_tokens for s in steps)
            if tokens <= 0:
                return StopReason.LENGTH, None
            try:
                job = self._resubmit(list(messages), tokens, left)
            except BusyError:
                time.sleep(BUSY_RETRY_S)  # every slot is taken: this turn waits its turn, it is not refused
                continue
            except Exception as exc:  # the model went away between steps: the turn ends with a reason
                return StopReason.ERROR, str(exc)
            with self._lock:
                self.job = job
                self.prompt_tokens += len(getattr(job, "prompt", ()))
                if self._cancel.is_set():
                    job.cancel()
            return None, None

    def _end(self, reason, steps: list[Stats], messages: list[dict], calls: int, tool_time: float,
             error: str | None = None, malformed: bool = False) -> Done:
        return Done(reason, merge_stats(steps, reason, calls, tool_time), error=error, malformed=malformed,
                    harmony_messages=tuple(messages))


def merge_stats(steps: list[Stats], reason, calls: int, tool_time: float) -> Stats:
    """The whole turn's figures: tokens summed over its generations, time to the first token of the
    first, tokens per second over generation time only (tool time is counted apart)."""
    first = steps[0]
    reasoning = [s.reasoning_time for s in steps if s.reasoning_time is not None]
    timed = [s for s in steps if s.tokens_per_s and s.total_tokens > 1]
    seconds = sum((s.total_tokens - 1) / s.tokens_per_s for s in timed)
    return Stats(ttft=first.ttft, reasoning_time=sum(reasoning) if reasoning else None,
                 reasoning_tokens=sum(s.reasoning_tokens for s in steps),
                 answer_tokens=sum(s.answer_tokens for s in steps), total_tokens=sum(s.total_tokens for s in steps),
                 tokens_per_s=sum(s.total_tokens - 1 for s in timed) / seconds if seconds > 0 else first.tokens_per_s,
                 stop_reason=reason, tool_calls=calls, tool_time=tool_time,
                 context_tokens=steps[-1].context_tokens, context_window=steps[-1].context_window)

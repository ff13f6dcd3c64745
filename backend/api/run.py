"""One API request's answer, whichever API asked: the turn's events read once, folded into the answer the
page would keep (the one trace writer), and handed to the API's own format (backend/api/chat.py,
backend/api/responses.py) as typed records:

- `Reasoning` — only where the reasoning-display policy shows raw reasoning (a summary comes after the
  answer, as more `Reasoning`, where the policy says summary);
- `Answer` — the client reads preambles and the final answer as text; `stop` strings end it here;
- `ClientCall` — a call to one of the request's own functions;
- `ServerCall`, then its `ServerResult` — a call to one of the deployment's MCP servers the request
  enabled (`{"type": "mcp", "server_label": ...}`), run here by the agent loop between generations.

A call to anything the request did not offer (a function it never sent, a built-in tool) is never
passed on as a call: the answer ends with an error that says so.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Iterator

from backend.api.messages import ApiCall
from backend.serving.live import Steps
from core.events import Answer, Done, Preamble, Reasoning, StopReason, ToolCall, ToolResult
from core.records import MessageStatus, MessageView


@dataclass(frozen=True)
class ClientCall:
    call_id: str
    name: str
    arguments: str
    namespace: str | None = None  # a Responses namespace tool's; None: harmony's `functions`


@dataclass(frozen=True)
class ServerCall:
    item_id: str
    server: str  # the MCP server's name (the request's server_label)
    name: str
    arguments: str


@dataclass(frozen=True)
class ServerResult:
    call: ServerCall
    output: str
    status: str  # ok | error | timeout | stopped


class StopText:
    """`stop` strings over streamed text: what may be shown now, and whether one was reached. Text
    that could be the start of a stop string is held back until the next piece settles it."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops, self.held, self.hit = stops, "", False
        self.longest = max((len(s) for s in stops), default=0)

    def feed(self, text: str) -> str:
        if not self.stops or self.hit:
            return "" if self.hit else text
        text, self.held = self.held + text, ""
        found = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if found:
            self.hit = True
            return text[:min(found)]
        keep = next((n for n in range(min(self.longest - 1, len(text)), 0, -1)
                     if any(s.startswith(text[-n:]) for s in self.stops)), 0)
        self.held = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep]

    def flush(self) -> str:
        held, self.held = ("", "") if self.hit else (self.held, "")
        return held


class ApiTurn:
    """The answer to one API request: `outputs()` once, then `done`, `calls`, `error`, `usage()`."""

    def __init__(self, pipeline, owner: str, call: ApiCall, job, stored, *, offered: set[str],
                 prior: list[dict] = (), answer: MessageView | None = None):
        self.pipeline, self.owner, self.call, self.job, self.stored = pipeline, owner, call, job, stored
        self.offered, self.prior = offered, list(prior)
        self.policy = pipeline.policy  # what the client may see of the reasoning
        self.summarizing = pipeline.summarizer.turn() if self.policy.summarize else None
        # the stored answer this request writes: a new one, or (a function's result came) the one that called
        self.answer = answer or MessageView(id=stored[1] if stored else 0, position=0, role="assistant", content="",
                                            effort=call.options.effort, status=MessageStatus.STREAMING)
        self.steps = Steps(self.answer)
        self.stop = StopText(call.stop)
        self.done: Done | None = None
        self.calls: list[ClientCall] = []
        self.text: list[str] = []  # what the client got as text
        self.error: str | None = None  # why the answer failed, in a sentence
        self.servers = set(call.options.tools or [])  # the deployment's MCP servers this request enabled
        self.running: ServerCall | None = None  # the server call whose result comes next

    def cancel(self) -> None:
        self.job.cancel()
        if self.summarizing is not None:
            self.summarizing.cancel()

    def discard(self) -> None:
        """Never read (the client left before the answer started): give the slot back, close the
        stored answer as stopped."""
        self.job.discard()
        self._end()

    def outputs(self) -> Iterator[Reasoning | Answer | ClientCall]:
        try:
            for event in self.job.events():
                if isinstance(event, Done):
                    self.done = event
                    break
                yield from self._output(event)
            if (tail := self.stop.flush()):
                yield self._text(tail)
            self.steps.close()
            for text in self._summary():
                yield Reasoning(text)
        finally:
            self._end()

    def _text(self, text: str) -> Answer:
        self.text.append(text)
        return Answer(text)

    def _output(self, event):
        self.steps.apply(event)
        if isinstance(event, Reasoning) and self.policy.raw:  # kept for the server; sent only where raw
            yield event
        elif isinstance(event, (Answer, Preamble)) and not self.stop.hit:
            shown = self.stop.feed(event.text)
            if shown:
                yield self._text(shown)
            if self.stop.hit:
                self.job.cancel()  # the rest is not wanted: its slot goes to someone else now
        elif isinstance(event, ToolCall) and event.recipient.partition(".")[0] in self.servers:
            server, _, name = event.recipient.partition(".")
            self.running = ServerCall("mcp_" + secrets.token_hex(12), server, name, event.arguments)
            yield self.running
        elif isinstance(event, ToolResult) and self.running is not None:
            yield ServerResult(self.running, event.output, event.status)
            self.running = None
        elif isinstance(event, ToolCall):
            if event.recipient in self.offered:
                namespace, _, name = event.recipient.partition(".")
                call = ClientCall("call_" + secrets.token_hex(12), name, event.arguments,
                                  None if namespace == "functions" else namespace)
                self.calls.append(call)
                yield call
            else:
                offered = sorted(r.removeprefix("functions.") for r in self.offered)
                self.error = (f"The model called {event.recipient!r}, which this request did not offer"
                              + (f" (it offered {', '.join(offered)})." if offered else
                                 " (it offered no functions).") + " Ask again, or offer that function.")
                self.job.cancel()  # nothing it writes after this is answered

    def failed(self) -> str | None:
        """Why the answer failed (the model's error, or a call to something not offered), or None."""
        if self.error:
            return self.error
        if self.done is not None and self.done.stop_reason == StopReason.ERROR:
            return self.done.error or "The answer failed."
        return None

    def stop_reason(self) -> StopReason:
        if self.done is None or self.stop.hit:
            return StopReason.RETURN
        return StopReason.CALL if self.calls else self.done.stop_reason

    def usage(self) -> tuple[int, int, int]:
        """Prompt tokens, completion tokens and the reasoning tokens among them."""
        s = self.done.stats if self.done else None
        return self.prompt_tokens(), (s.total_tokens if s else 0), (s.reasoning_tokens if s else 0)

    def prompt_tokens(self) -> int:
        """The prompt read: one generation's, or (MCP tools ran between generations) every step's."""
        loop_total = getattr(self.job, "prompt_tokens", None)  # an AgentLoop counts them itself
        return loop_total if loop_total is not None else len(self.job.prompt)

    def shown_reasoning(self) -> str:
        return self.answer.reasoning if self.policy.raw else self.answer.reasoning_summary

    def _summary(self):
        """--reasoning-display summary: the reasoning's summary, written after the answer."""
        if self.summarizing is None:
            return
        for text in self.summarizing.stream(self.answer.reasoning, self.done):
            self.answer.reasoning_summary += text
            yield text

    def _end(self) -> None:
        """Save the stored exchange's answer (also when the client went away), and log the answer."""
        done = self.done or Done(StopReason.STOPPED)
        if self.done is not None and (self.error or self.stop.hit):  # ended here, not by the model
            done = replace(done, stop_reason=StopReason.ERROR if self.error else StopReason.RETURN,
                           error=self.error or done.error)
        if self.stored:
            self.pipeline.finish(self.owner, self.answer, done, harmony=self.prior)
        self.pipeline.oversight.tools_ran(self.owner, self.stored[0] if self.stored else None, self.answer.trace)
        self.pipeline.answered(self.owner, self.stored[0] if self.stored else None, self.call.options.effort,
                               self.prompt_tokens(), done, via="api")

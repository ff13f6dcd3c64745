"""Chat Completions' format: an ApiTurn's records as `chat.completion.chunk`s (streaming) or one
`chat.completion`.

Reasoning goes out as `delta.reasoning_content` and, as vLLM names it, `delta.reasoning`; the answer
as `delta.content`; a call to one of the client's functions as `delta.tool_calls` with finish_reason
"tool_calls".
"""

from __future__ import annotations

import secrets
import time
from typing import Iterator

from backend.api.run import ApiTurn, ClientCall, ServerCall, ServerResult
from core.errors import GenerationError
from core.events import Reasoning, StopReason

FINISH = {StopReason.RETURN: "stop", StopReason.CALL: "tool_calls", StopReason.LENGTH: "length",
          StopReason.STOPPED: "stop", StopReason.ERROR: "stop"}


def _call(call: ClientCall, index: int | None = None) -> dict:
    out = {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
    return out if index is None else {"index": index, **out}


class ChatRun:
    """One chat-completions request's answer."""

    def __init__(self, turn: ApiTurn, model: str):
        self.turn, self.model, self.call = turn, model, turn.call
        self.id, self.created = "chatcmpl-" + secrets.token_hex(12), int(time.time())

    def cancel(self) -> None:
        self.turn.cancel()

    def discard(self) -> None:
        self.turn.discard()

    def _chunk(self, delta: dict, finish: str | None = None, usage: dict | None = None) -> dict:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage is not None:
            chunk["choices"], chunk["usage"] = [], usage
        return chunk

    def usage(self) -> dict:
        prompt, completion, reasoning = self.turn.usage()
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "completion_tokens_details": {"reasoning_tokens": reasoning}}

    def chunks(self) -> Iterator[dict]:
        """The streaming answer. An error after the start is one `{"error": ...}` chunk; the caller
        stops reading when the client goes away, and `cancel` then ends the generation."""
        yield self._chunk({"role": "assistant", "content": ""})
        for out in self.turn.outputs():
            if isinstance(out, Reasoning):
                yield self._chunk({"reasoning_content": out.text, "reasoning": out.text})
            elif isinstance(out, ClientCall):
                yield self._chunk({"tool_calls": [_call(out, len(self.turn.calls) - 1)]})
            elif isinstance(out, (ServerCall, ServerResult)):
                continue  # the deployment's MCP tools run here; chat completions has no place for them
            else:
                yield self._chunk({"content": out.text})
        error = self.turn.failed()
        if error:
            yield {"error": {"message": error, "type": "server_error"}}
            return
        yield self._chunk({}, FINISH[self.turn.stop_reason()])
        if self.call.include_usage:
            yield self._chunk({}, usage=self.usage())

    def response(self) -> dict:
        """The whole answer at once (stream: false). A failed answer raises its error."""
        for _ in self.chunks():
            pass
        error = self.turn.failed()
        if error:
            raise GenerationError(error)
        calls = self.turn.calls
        message = {"role": "assistant", "content": "".join(self.turn.text) or (None if calls else "")}
        shown = self.turn.shown_reasoning()
        if shown:
            message["reasoning_content"] = message["reasoning"] = shown
        if calls:
            message["tool_calls"] = [_call(c) for c in calls]
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": FINISH[self.turn.stop_reason()]}],
                "usage": self.usage()}

"""The Responses API's format: an ApiTurn's records as a `response` object (stream: false) or as its
server-sent events (response.created, response.output_item.added, response.reasoning_text.delta,
response.output_text.delta, response.function_call_arguments.delta, ..., response.completed).

Output items, in the order the model wrote them:
- `reasoning` — raw reasoning as `content` [reasoning_text] where the display policy is raw (and, with
  include reasoning.encrypted_content, as an opaque blob a stateless client sends back); under the
  summary policy the summary as `summary` [summary_text]; nothing under hidden;
- `message` — the answer (and preambles) as output_text;
- `function_call` — a call to one of the request's functions (call_id, name, arguments);
- `mcp_list_tools` (first, one per MCP server the request enabled) and `mcp_call` — a call to one of the
  deployment's MCP servers, run here: server_label, name, arguments, then output or error.
"""

from __future__ import annotations

import secrets
import time
from typing import Iterator

from backend.api.responses_input import ResponsesCall, encode_reasoning
from backend.api.run import ApiTurn, ClientCall, ServerCall, ServerResult
from core.events import Reasoning, StopReason


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


class ResponsesRun:
    """One Responses request's answer: `events()` (streaming) or `response()` (whole)."""

    def __init__(self, turn: ApiTurn, request: ResponsesCall, model: str, response_id: str, on_end=None):
        self.turn, self.request, self.model, self.id = turn, request, model, response_id
        self.call = turn.call
        self.created = int(time.time())
        self.output: list[dict] = []  # items done
        self.item: dict | None = None  # the item being written
        self.running: dict | None = None  # the mcp_call item whose result comes next
        self.seq = 0
        self.status = "in_progress"
        self.on_end = on_end  # (body) -> None: keeps the stored response

    def cancel(self) -> None:
        self.turn.cancel()

    def discard(self) -> None:
        self.turn.discard()

    # -- the response object -----------------------------------------------------------------

    def body(self) -> dict:
        prompt, completion, reasoning = self.turn.usage()
        failed = self.turn.failed() if self.status == "failed" else None
        summary = self.request.summary
        return {
            "id": self.id, "object": "response", "created_at": self.created, "status": self.status,
            "model": self.model, "output": list(self.output), "output_text": self._text(),
            "error": {"code": "server_error", "message": failed} if failed else None,
            "incomplete_details": {"reason": "max_output_tokens"} if self.status == "incomplete" else None,
            "previous_response_id": self.request.previous_response_id,
            "reasoning": {"effort": self.call.options.effort, "summary": summary},
            "text": {"format": {"type": "text"}}, "truncation": "disabled", "store": self.call.store,
            "metadata": self.call.metadata, "background": False,
            "usage": {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
                      "total_tokens": prompt + completion} if self.status != "in_progress" else None,
            **self.request.echo,
        }

    def _text(self) -> str:
        return "".join(p["text"] for item in self.output if item["type"] == "message" for p in item["content"])

    # -- events --------------------------------------------------------------------------------

    def _event(self, kind: str, **fields) -> dict:
        self.seq += 1
        return {"type": kind, "sequence_number": self.seq - 1, **fields}

    def events(self) -> Iterator[dict]:
        try:
            yield self._event("response.created", response=self.body())
            yield self._event("response.in_progress", response=self.body())
            for server in self.call.options.tools or []:
                yield from self._list_tools(server)
            for out in self.turn.outputs():
                yield from self._on(out)
            yield from self._close()
            self.status = self._status()
            kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
                self.status, "response.failed")
            yield self._event(kind, response=self.body())
        finally:
            if self.status == "in_progress":
                self.status = "cancelled"  # the client went away
            if self.on_end is not None:
                self.on_end(self.body())

    def response(self) -> dict:
        for _ in self.events():
            pass
        return self.body()

    def _status(self) -> str:
        if self.turn.failed():
            return "failed"
        return "incomplete" if self.turn.stop_reason() == StopReason.LENGTH else "completed"

    def _on(self, out) -> Iterator[dict]:
        if isinstance(out, ClientCall):
            yield from self._close()
            yield from self._function_call(out)
            return
        if isinstance(out, ServerCall):
            yield from self._close()
            yield from self._mcp_call(out)
            return
        if isinstance(out, ServerResult):
            yield from self._mcp_result(out)
            return
        kind = "reasoning" if isinstance(out, Reasoning) else "message"
        if self.item is None or self.item["type"] != kind:
            yield from self._close()
            yield from self._open(kind)
        yield from self._delta(out.text)

    def _open(self, kind: str) -> Iterator[dict]:
        index = len(self.output)
        if kind == "message":
            self.item = {"id": _id("msg"), "type": "message", "role": "assistant", "status": "in_progress",
                         "content": []}
            part, event = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}, "content_part"
        else:
            self.item = {"id": _id("rs"), "type": "reasoning", "summary": [], "content": []}
            raw = self.turn.policy.raw
            part = {"type": "reasoning_text" if raw else "summary_text", "text": ""}
            event = "content_part" if raw else "reasoning_summary_part"
        yield self._event("response.output_item.added", output_index=index, item=dict(self.item, content=[]))
        where = {"content_index": 0} if event == "content_part" else {"summary_index": 0}
        yield self._event(f"response.{event}.added", item_id=self.item["id"], output_index=index, **where,
                          part=dict(part))
        self.part, self.part_event, self.where = part, event, where

    def _delta_kind(self) -> str:
        if self.item["type"] == "message":
            return "response.output_text"
        return "response.reasoning_text" if self.part_event == "content_part" else "response.reasoning_summary_text"

    def _delta(self, text: str) -> Iterator[dict]:
        self.part["text"] += text
        extra = {"logprobs": []} if self.item["type"] == "message" else {}
        yield self._event(self._delta_kind() + ".delta", item_id=self.item["id"], output_index=len(self.output),
                          **self.where, delta=text, **extra)

    def _close(self) -> Iterator[dict]:
        if self.item is None:
            return
        item, part, index = self.item, self.part, len(self.output)
        extra = {"logprobs": []} if item["type"] == "message" else {}
        yield self._event(self._delta_kind() + ".done", item_id=item["id"], output_index=index, **self.where,
                          text=part["text"], **extra)
        yield self._event(f"response.{self.part_event}.done", item_id=item["id"], output_index=index,
                          **self.where, part=part)
        if item["type"] == "message":
            item.update(status="completed", content=[part])
        elif self.part_event == "content_part":
            item["content"] = [part]
            if self.request.include_reasoning_blob:
                item["encrypted_content"] = encode_reasoning(part["text"])
        else:
            item["summary"] = [part]
        self.output.append(item)
        self.item = None
        yield self._event("response.output_item.done", output_index=index, item=item)

    def _function_call(self, call: ClientCall) -> Iterator[dict]:
        index = len(self.output)
        item = {"id": _id("fc"), "type": "function_call", "call_id": call.call_id, "name": call.name,
                "arguments": "", "status": "in_progress", **({"namespace": call.namespace} if call.namespace else {})}
        yield self._event("response.output_item.added", output_index=index, item=dict(item))
        yield self._event("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                          delta=call.arguments)
        yield self._event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                          name=call.name, arguments=call.arguments)
        item.update(arguments=call.arguments, status="completed")
        self.output.append(item)
        yield self._event("response.output_item.done", output_index=index, item=item)

    def _list_tools(self, server: str) -> Iterator[dict]:
        """What the model is offered of an MCP server (as OpenAI's API lists a server's tools first)."""
        index = len(self.output)
        tools = [{"name": t["name"], "description": t["description"], "input_schema": t["parameters"],
                  "annotations": None} for t in self.turn.pipeline.toolbox.tools[server].namespace()["tools"]]
        item = {"id": _id("mcpl"), "type": "mcp_list_tools", "server_label": server, "tools": []}
        yield self._event("response.output_item.added", output_index=index, item=dict(item))
        yield self._event("response.mcp_list_tools.in_progress", item_id=item["id"], output_index=index)
        item["tools"] = tools
        yield self._event("response.mcp_list_tools.completed", item_id=item["id"], output_index=index)
        self.output.append(item)
        yield self._event("response.output_item.done", output_index=index, item=item)

    def _mcp_call(self, call: ServerCall) -> Iterator[dict]:
        index = len(self.output)
        self.running = {"id": call.item_id, "type": "mcp_call", "server_label": call.server, "name": call.name,
                        "arguments": call.arguments, "output": None, "error": None, "status": "in_progress"}
        yield self._event("response.output_item.added", output_index=index, item=dict(self.running, arguments=""))
        yield self._event("response.mcp_call_arguments.delta", item_id=call.item_id, output_index=index,
                          delta=call.arguments)
        yield self._event("response.mcp_call_arguments.done", item_id=call.item_id, output_index=index,
                          arguments=call.arguments)
        yield self._event("response.mcp_call.in_progress", item_id=call.item_id, output_index=index)

    def _mcp_result(self, result: ServerResult) -> Iterator[dict]:
        index, item = len(self.output), self.running
        ok = result.status == "ok"
        item.update(output=result.output if ok else None, error=None if ok else result.output,
                    status="completed" if ok else "failed")
        yield self._event("response.mcp_call.completed" if ok else "response.mcp_call.failed", item_id=item["id"],
                          output_index=index)
        self.output.append(item)
        self.running = None
        yield self._event("response.output_item.done", output_index=index, item=item)

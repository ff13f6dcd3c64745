"""The OpenAI-compatible API's logic: who asks (API keys), what runs (the same turn pipeline, worker,
continuous batching and harmony parsing as the page: backend/services/pipeline.py), what comes back
(chat-completion chunks). It only translates: a request into ChatOptions and harmony turns, the turn's
events into chunks. The HTTP side is ui/routes.py; this module returns plain dicts.

Reasoning goes out as `delta.reasoning_content` and, as vLLM names it, `delta.reasoning`; the
answer as `delta.content`; a call to one of the client's functions as `delta.tool_calls` with
finish_reason "tool_calls". With `store` (or --api-store) the exchange is saved as a conversation
of the key's owner, so it shows in their sidebar.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from pathlib import PurePath
from typing import Iterator

from backend.api.messages import ApiCall, parse_body
from backend.engines.base import EngineInfo
from backend.services.pipeline import TurnPipeline
from backend.serving.live import Steps
from core.config import DEFAULT_EFFORT, DEFAULT_MAX_NEW_TOKENS
from core.errors import AuthError, GenerationError, NotFoundError
from core.events import Answer, Done, Preamble, Reasoning, StopReason, ToolCall
from core.records import MessageStatus, MessageView
from storage.api_keys import KEY_PREFIX, SHOWN_CHARS

FINISH = {StopReason.RETURN: "stop", StopReason.CALL: "tool_calls", StopReason.LENGTH: "length",
          StopReason.STOPPED: "stop", StopReason.ERROR: "stop"}
DEMO_ID = "gpt-oss-chat-demo"  # the bundled demo model, as the API names it
NO_KEY = ("This API needs a key: send `Authorization: Bearer <key>`. Whoever runs this server makes keys with "
          "`python -m backend.identity.users key create NAME`.")


def served_name(description: EngineInfo) -> str:
    """The model's name as the API lists it: a folder path becomes its last part (no server paths out)."""
    if description.demo:
        return DEMO_ID
    model = description.model if description.model not in ("", "?") else "gpt-oss"
    return PurePath(model).name if model.startswith(("/", ".")) else model


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or ""."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class OpenAIApi:
    def __init__(self, pipeline: TurnPipeline, keys, *, keyless_owner: str | None, store: bool = False,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS):
        self.pipeline, self.keys = pipeline, keys
        self.keyless_owner = keyless_owner  # no users configured: the one local user, as on the page
        self.store, self.max_new_tokens = store, max_new_tokens

    @staticmethod
    def shown_key(authorization: str | None) -> str | None:
        """The part of a request's key the audit log keeps (its prefix, as `key list` shows it)."""
        return bearer(authorization)[:SHOWN_CHARS] or None

    def owner(self, authorization: str | None) -> str:
        """The key's owner. Where the app has no users at all, any other bearer (clients insist on
        sending one: "EMPTY", "sk-none") or none is the one local user, as on the page."""
        key = bearer(authorization)
        if key.startswith(KEY_PREFIX):
            owner = self.keys.owner_of(key)
            if owner is None:
                raise AuthError("This API key is not valid (unknown or revoked).")
            return owner
        if self.keyless_owner:
            return self.keyless_owner
        raise AuthError(NO_KEY)

    def model(self) -> str:
        return served_name(self.pipeline.ready_engine())  # a clear error while loading or after a failure

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.model(), "object": "model", "created": 0,
                                            "owned_by": "gpt-oss-chat"}]}

    def start(self, owner: str, body, key: str | None = None) -> "ApiRun":
        """Check the request, submit it (busy or loading fail here, before any answer starts), and
        store the exchange first when asked."""
        pipeline = self.pipeline
        call = parse_body(body, limit=pipeline.max_message_chars, max_new_tokens=self.max_new_tokens,
                          default_effort=DEFAULT_EFFORT, store=self.store)
        model = self.model()
        if call.model and call.model not in (model, PurePath(model).name):
            raise NotFoundError(f"This server serves {model!r}, not {call.model!r} (see /v1/models).")
        # The client's own functions only (none of the deployment's tools): any name is the client's.
        call = replace(call, options=pipeline.admit(owner, call.options, client_functions=True))
        job = pipeline.submit(call.turns, call.options, client_functions=True)
        try:
            stored = pipeline.store_exchange(owner, call.turns, call.options, call.texts[0] if call.texts else "",
                                             via="api") if call.store else None
        except BaseException:
            job.discard()
            raise
        pipeline.audit(owner, "api_request", text=call.texts[-1] if call.texts else None, effort=call.options.effort,
                       conversation_id=stored[0] if stored else None, key=key)
        return ApiRun(self, owner, call, job, model, stored)


class ApiRun:
    """One request's answer, as chunks (streaming) or one response."""

    def __init__(self, api: OpenAIApi, owner: str, call: ApiCall, job, model: str, stored):
        self.api, self.owner, self.call, self.job, self.model, self.stored = api, owner, call, job, model, stored
        self.id, self.created = "chatcmpl-" + secrets.token_hex(12), int(time.time())
        self.calls, self.content = [], []  # what the client gets: calls, and content (answer and preambles)
        # The answer as the page keeps one: text, reasoning and the typed trace, folded by the one writer.
        self.answer = MessageView(id=stored[1] if stored else 0, position=0, role="assistant", content="",
                                  effort=call.options.effort, status=MessageStatus.STREAMING)
        self.steps = Steps(self.answer)
        self.done: Done | None = None
        self.pipeline = api.pipeline
        self.policy = self.pipeline.policy  # what the client may see of the reasoning
        self.summarizing = self.pipeline.summarizer.turn() if self.policy.summarize else None

    def cancel(self) -> None:
        self.job.cancel()
        if self.summarizing is not None:
            self.summarizing.cancel()

    def discard(self) -> None:
        """Never read (the client left before the answer started): give the slot back, close the
        stored answer as stopped."""
        self.job.discard()
        self._end()

    def _chunk(self, delta: dict, finish: str | None = None, usage: dict | None = None) -> dict:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage is not None:
            chunk["choices"], chunk["usage"] = [], usage
        return chunk

    def _delta(self, event) -> dict | None:
        self.steps.apply(event)
        if isinstance(event, Reasoning):  # kept for the server; sent only where the policy is raw
            return {"reasoning_content": event.text, "reasoning": event.text} if self.policy.raw else None
        if isinstance(event, (Answer, Preamble)):  # the client reads words beside calls as content too
            self.content.append(event.text)  # (stored, a preamble is a step of the trace, as on the page)
            return {"content": event.text}
        if isinstance(event, ToolCall) and event.recipient.startswith("functions."):
            call = {"index": len(self.calls), "id": "call_" + secrets.token_hex(8), "type": "function",
                    "function": {"name": event.recipient.removeprefix("functions."), "arguments": event.arguments}}
            self.calls.append(call)
            return {"tool_calls": [call]}
        return None

    def usage(self) -> dict:
        s = self.done.stats if self.done else None
        completion = s.total_tokens if s else 0
        return {"prompt_tokens": len(self.job.prompt), "completion_tokens": completion,
                "total_tokens": len(self.job.prompt) + completion,
                "completion_tokens_details": {"reasoning_tokens": s.reasoning_tokens if s else 0}}

    def chunks(self) -> Iterator[dict]:
        """The streaming answer. An error after the start is one `{"error": ...}` chunk; the caller
        stops reading when the client goes away, and `cancel` then ends the generation."""
        yield self._chunk({"role": "assistant", "content": ""})
        try:
            for event in self.job.events():
                if isinstance(event, Done):
                    self.done = event
                    break
                delta = self._delta(event)
                if delta:
                    yield self._chunk(delta)
            self.steps.close()
            for text in self._summary():
                yield self._chunk({"reasoning_content": text, "reasoning": text})
        finally:
            self._end()
        done = self.done
        if done is not None and done.stop_reason == StopReason.ERROR:
            yield {"error": {"message": done.error or "The answer failed.", "type": "server_error"}}
            return
        yield self._chunk({}, self._finish())
        if self.call.include_usage:
            yield self._chunk({}, usage=self.usage())

    def response(self) -> dict:
        """The whole answer at once (stream: false). A failed generation raises its error."""
        for _ in self.chunks():
            pass
        if self.done is not None and self.done.stop_reason == StopReason.ERROR:
            raise GenerationError(self.done.error or "The answer failed.")
        message = {"role": "assistant", "content": "".join(self.content) or (None if self.calls else "")}
        shown = self.answer.reasoning if self.policy.raw else self.answer.reasoning_summary
        if shown:
            message["reasoning_content"] = message["reasoning"] = shown
        if self.calls:
            message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in self.calls]
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": self._finish()}],
                "usage": self.usage()}

    def _summary(self):
        """--reasoning-display summary: the reasoning's summary, written after the answer."""
        if self.summarizing is None:
            return
        for text in self.summarizing.stream(self.answer.reasoning, self.done):
            self.answer.reasoning_summary += text
            yield text

    def _prior(self) -> list[dict]:
        """A turn that goes on after a tool's result: its earlier steps stay in the stored answer."""
        last = self.call.turns[-1]
        return list(last.harmony) if last.role == "assistant" else []

    def _finish(self) -> str:
        if self.done is None:
            return "stop"
        return "tool_calls" if self.calls else FINISH.get(self.done.stop_reason, "stop")

    def _end(self) -> None:
        """Save the stored exchange's answer (also when the client went away), and log the answer."""
        done = self.done or Done(StopReason.STOPPED)
        if self.stored:
            self.pipeline.finish(self.owner, self.answer, done, harmony=self._prior())
        self.pipeline.answered(self.owner, self.stored[0] if self.stored else None, self.call.options.effort,
                               len(self.job.prompt), done, via="api")

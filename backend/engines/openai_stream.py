"""Reading the streams of OpenAI-compatible servers: SSE lines, Ollama's NDJSON, and the chunk
formats of vLLM, SGLang, llama.cpp, Ollama and `transformers serve`. Pure functions, no network.

Each reader turns one parsed chunk into a `Piece`: what the engine needs to push (token ids,
reasoning text, answer text, tool-call fragments) and how and whether the response ended.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from core.errors import GenerationError

TOKEN_ID_PREFIX = "token_id:"  # vLLM --return-tokens-as-token-ids writes logprob tokens like this


class StreamFormatError(GenerationError):
    """The server's stream could not be read."""


@dataclass
class Piece:
    ids: list[int] | None = None  # token mode: the new token ids
    text: str = ""  # token mode without ids: text that is raw harmony
    reasoning: str = ""
    content: str = ""
    tool_calls: list[dict] = field(default_factory=list)  # OpenAI delta.tool_calls entries
    finish_reason: str | None = None
    stop_token: int | None = None  # vLLM's stop_reason when a stop token id ended the response
    usage: dict | None = None
    done: bool = False  # the stream says it is over ([DONE], Ollama's done)


def sse_data(line: str) -> str | None:
    """The payload of one SSE line, or None for lines that carry none (comments, event names)."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip()


def _load(payload: str) -> dict:
    try:
        obj = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise StreamFormatError(f"The inference server sent a malformed stream (not JSON: {payload[:80]!r}).") \
            from exc
    if not isinstance(obj, dict):
        raise StreamFormatError("The inference server sent a malformed stream (a chunk is not an object).")
    if obj.get("error"):
        err = obj["error"]
        message = err.get("message") if isinstance(err, dict) else str(err)
        raise GenerationError(f"The inference server failed while answering: {message}")
    return obj


def _usage(obj: dict) -> dict | None:
    usage, out = obj.get("usage"), {}
    if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
        out = {"prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage["completion_tokens"]}
        details = usage.get("completion_tokens_details") or {}
        if details.get("reasoning_tokens"):
            out["reasoning_tokens"] = details["reasoning_tokens"]
    timings = obj.get("timings")  # llama.cpp
    if isinstance(timings, dict) and timings.get("predicted_per_second"):
        out["tokens_per_s"] = float(timings["predicted_per_second"])
        out.setdefault("completion_tokens", timings.get("predicted_n"))
    return out or None


def _choice(obj: dict) -> dict:
    choices = obj.get("choices") or []
    first = choices[0] if choices else {}
    if not isinstance(first, dict):
        raise StreamFormatError("The inference server sent a malformed stream (bad choices).")
    return first


def completion_piece(payload: str) -> Piece:
    """A /v1/completions chunk (token mode)."""
    if payload == "[DONE]":
        return Piece(done=True)
    obj = _load(payload)
    choice = _choice(obj)
    ids = choice.get("token_ids")
    if ids is None:
        tokens = (choice.get("logprobs") or {}).get("tokens") or []
        if tokens and all(isinstance(t, str) and t.startswith(TOKEN_ID_PREFIX) for t in tokens):
            ids = [int(t[len(TOKEN_ID_PREFIX):]) for t in tokens]
    stop = choice.get("stop_reason")
    return Piece(ids=list(ids) if ids is not None else None, text=choice.get("text") or "",
                 finish_reason=choice.get("finish_reason"), stop_token=stop if isinstance(stop, int) else None,
                 usage=_usage(obj))


def llamacpp_piece(payload: str) -> Piece:
    """A chunk of llama.cpp's native /completion with `return_tokens`: the new ids in `tokens`
    (the end-of-generation id, <|return|> or <|call|>, included), `stop` and `timings` at the end."""
    obj = _load(payload)
    ids = obj.get("tokens")
    piece = Piece(ids=list(ids) if isinstance(ids, list) else None, text=obj.get("content") or "")
    if obj.get("stop"):
        piece.done = True
        piece.finish_reason = "length" if obj.get("stop_type") == "limit" else "stop"
        piece.usage = _usage(obj)
    return piece


def chat_piece(payload: str) -> Piece:
    """A /v1/chat/completions chunk: reasoning in delta.reasoning (vLLM, Ollama) or
    delta.reasoning_content (vLLM before 0.10, llama.cpp, SGLang, transformers serve)."""
    if payload == "[DONE]":
        return Piece(done=True)
    obj = _load(payload)
    choice = _choice(obj)
    delta = choice.get("delta") or {}
    reasoning = delta.get("reasoning") or delta.get("reasoning_content") or ""
    return Piece(reasoning=reasoning, content=delta.get("content") or "",
                 tool_calls=list(delta.get("tool_calls") or []), finish_reason=choice.get("finish_reason"),
                 usage=_usage(obj))


def ollama_piece(line: str) -> Piece:
    """One NDJSON line of Ollama's native /api/chat: message.thinking and message.content."""
    obj = _load(line)
    message = obj.get("message") or {}
    calls = [{"index": i, "function": {"name": c.get("function", {}).get("name", ""),
                                       "arguments": c.get("function", {}).get("arguments", {})}}
             for i, c in enumerate(message.get("tool_calls") or [])]
    piece = Piece(reasoning=message.get("thinking") or "", content=message.get("content") or "", tool_calls=calls)
    if obj.get("done"):
        piece.done = True
        piece.finish_reason = obj.get("done_reason") or "stop"
        if obj.get("eval_count") is not None:
            piece.usage = {"prompt_tokens": obj.get("prompt_eval_count"), "completion_tokens": obj["eval_count"]}
            if obj.get("eval_duration"):
                piece.usage["tokens_per_s"] = obj["eval_count"] / (obj["eval_duration"] / 1e9)
    return piece


class ToolCalls:
    """Tool calls arrive in fragments (name first, arguments in pieces) keyed by index."""

    def __init__(self):
        self.calls: dict[int, dict] = {}

    def add(self, fragments: list[dict]) -> None:
        for f in fragments:
            call = self.calls.setdefault(int(f.get("index", len(self.calls))), {"name": "", "arguments": ""})
            function = f.get("function") or {}
            call["name"] += function.get("name") or ""
            args = function.get("arguments")
            if isinstance(args, dict):  # Ollama sends the arguments whole, as an object
                call["arguments"] = json.dumps(args)
            elif args:
                call["arguments"] += args

    def take(self) -> list[dict]:
        calls, self.calls = [self.calls[i] for i in sorted(self.calls)], {}
        return calls

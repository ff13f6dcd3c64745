"""A Responses API request, checked, turned into what the turn pipeline takes (an ApiCall): `input` as a
string or items, `instructions`, `reasoning`, `tools`/`tool_choice`, `max_output_tokens`, `text`,
`include`; every other parameter honoured or refused by name (backend/api/params.py).

Items become harmony messages as the chat-completions messages do: a user message a user turn; an
assistant message the answer (`final`), or a preamble when calls follow; a reasoning item the
turn's analysis (harmony needs it carried through a tool loop: from `content` reasoning_text or from
our own `encrypted_content`); a function_call a call to `functions.NAME`; a function_call_output the
function's result, matched to its call by call_id.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from backend.api.functions import client_tools
from backend.api.messages import ApiCall, call_arguments, call_name, effort_of, end_user, metadata_of, stream_flags
from backend.api.params import RESPONSES_TABLE, boolean, check_params, response_format_of, token_budget
from backend.harmony.codec import PromptMessage, assistant_message, tool_message
from backend.services.options import ChatOptions, clean_text
from core.config import MODEL_WINDOW
from core.errors import InputError

MAX_ITEMS = 1000
JSON_CALL = "<|constrain|>json"
ENCRYPTED = "reasoning.encrypted_content"
BLOB_PREFIX = "goc1."  # our reasoning blobs: base64 of the reasoning text, encoded, not encrypted


def encode_reasoning(text: str) -> str:
    return BLOB_PREFIX + base64.urlsafe_b64encode(text.encode()).decode()


def decode_reasoning(blob) -> str:
    if not isinstance(blob, str) or not blob.startswith(BLOB_PREFIX):
        raise InputError("A reasoning item's encrypted_content is not one this server wrote.")
    try:
        return base64.urlsafe_b64decode(blob[len(BLOB_PREFIX):].encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InputError("A reasoning item's encrypted_content is damaged.") from None


@dataclass
class ResponsesCall:
    """The checked request: the ApiCall both APIs run, and what only a Responses answer needs."""

    api: ApiCall
    previous_response_id: str | None = None
    include_reasoning_blob: bool = False  # include: reasoning.encrypted_content
    summary: str | None = None  # reasoning.summary as asked (echoed back)
    echo: dict = field(default_factory=dict)  # the request's settings, as the response object repeats them
    items: list = field(default_factory=list)  # the raw input items (applied onto the history)


def _text(content, limit: int, what: str) -> str:
    if isinstance(content, str):
        return clean_text(content, limit, what)
    if not isinstance(content, list):
        raise InputError(f"A {what}'s content must be text or a list of text parts.")
    parts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text", "text"):
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise InputError(f"A {what} has a {kind!r} part; gpt-oss reads only text (input_text, output_text).")
        parts.append(str(part.get("text", "")))
    return clean_text("".join(parts), limit, what)


class Turns:
    """Input items applied onto a conversation's turns (empty, or a stored response's history)."""

    def __init__(self, turns: list[PromptMessage], calls: dict[str, str], limit: int):
        self.turns, self.calls, self.limit = turns, calls, limit  # calls: call_id -> its recipient
        self.instructions: list[str] = []
        self.users: list[str] = []

    def _assistant(self) -> list[dict]:
        if not self.turns or self.turns[-1].role != "assistant":
            self.turns.append(PromptMessage("assistant", "", harmony=[]))
        return self.turns[-1].harmony

    def add(self, item) -> None:
        if isinstance(item, str):
            item = {"role": "user", "content": item}
        if not isinstance(item, dict):
            raise InputError("Each input item must be an object (a message, reasoning, function_call or "
                             "function_call_output).")
        kind = item.get("type", "message")
        handler = {"message": self._message, "reasoning": self._reasoning, "function_call": self._call,
                   "function_call_output": self._output, "mcp_call": self._mcp_call,
                   # a server's tool listing, sent back as this API returned it: what it lists is offered by
                   # the request's own mcp tool, not by the item
                   "mcp_list_tools": lambda item: None}.get(kind)
        if handler is None:
            raise InputError(f"Input items of type {kind!r} are not taken here: send messages, reasoning, "
                             "function_call, function_call_output, mcp_call and mcp_list_tools items.")
        handler(item)

    def _message(self, item: dict) -> None:
        role = item.get("role")
        text = _text(item.get("content"), self.limit, f"{role} message")
        if role in ("system", "developer"):
            self.instructions.append(text)
        elif role == "user":
            self.turns.append(PromptMessage("user", text))
            self.users.append(text)
        elif role == "assistant":
            self._assistant().append(assistant_message(text, "final"))
            self.turns[-1].content = text
        else:
            raise InputError(f"Unknown message role {role!r}: use user, assistant, system or developer.")

    def _reasoning(self, item: dict) -> None:
        if item.get("encrypted_content"):
            text = decode_reasoning(item["encrypted_content"])
        else:
            parts = item.get("content") or []
            text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
        if text:  # a summary alone is not the reasoning: harmony gets nothing
            self._assistant().append(assistant_message(clean_text(text, 10 * self.limit, "reasoning"), "analysis"))

    def _call(self, item: dict) -> None:
        name, call_id, namespace = item.get("name"), item.get("call_id"), item.get("namespace")
        if not isinstance(name, str) or not name or not isinstance(call_id, str) or not call_id:
            raise InputError("A function_call item needs a call_id and a name.")
        call_name(name, "A function_call item's")
        if namespace is not None:
            call_name(namespace, "A function_call item's namespace")
        recipient = f"{namespace or 'functions'}.{name}"
        arguments = call_arguments(item.get("arguments"), self.limit)
        harmony = self._assistant()
        for message in harmony:  # words before a call were a preamble, not the answer
            if message.get("channel") == "final":
                message["channel"] = "commentary"
        self.turns[-1].content = ""
        harmony.append(assistant_message(arguments, "commentary", recipient, JSON_CALL))
        self.calls[call_id] = recipient

    def _mcp_call(self, item: dict) -> None:
        """An MCP call this server ran, sent back by a client that keeps its own history: the call and its
        result, as harmony had them."""
        server = call_name(item.get("server_label"), "An mcp_call item's server_label")
        recipient = f"{server}.{call_name(item.get('name'), 'An mcp_call item')}"
        result = item.get("output") if item.get("output") is not None else item.get("error")
        if not isinstance(result, (str, type(None))):
            result = json.dumps(result)
        self._assistant().append(assistant_message(call_arguments(item.get("arguments"), self.limit), "commentary",
                                                   recipient, JSON_CALL))
        self.turns[-1].harmony.append(tool_message(recipient, "commentary",
                                                   clean_text(result or "", self.limit, "mcp_call output")))

    def _output(self, item: dict) -> None:
        recipient = self.calls.get(str(item.get("call_id", "")))
        if recipient is None or not self.turns or self.turns[-1].role != "assistant":
            raise InputError("A function_call_output must answer a function_call (its call_id) of the input or "
                             "of the previous response.")
        output = item.get("output")
        text = output if isinstance(output, str) else _text(output, self.limit, "function_call_output")
        self.turns[-1].harmony.append(tool_message(recipient, "commentary",
                                                   clean_text(text, self.limit, "function_call_output")))

    def checked(self) -> list[PromptMessage]:
        last = self.turns[-1] if self.turns else None
        if last is None or (last.role == "assistant" and not (last.harmony and last.harmony[-1].get("role") == "tool")):
            raise InputError("The input must end with a user message (or a function_call_output).")
        return self.turns


def _text_format(body: dict):
    """`text.format`: None for plain text, else the answer's ResponseFormat."""
    text = body.get("text")
    if text is None:
        return None
    if not isinstance(text, dict) or set(text) - {"format", "verbosity"}:
        raise InputError('`text` takes {"format": {"type": "text" | "json_object" | "json_schema", ...}}.')
    if text.get("verbosity") is not None:
        raise InputError("`text.verbosity` is not supported here: gpt-oss has no verbosity setting; say it in the "
                         "instructions.")
    return response_format_of(text.get("format"), "text.format", nested=False)


def _labels(value) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 16 or not all(isinstance(v, str) for v in value.values()):
        raise InputError("`client_metadata` must be at most 16 pairs of strings.")
    return {str(k)[:64]: v[:200] for k, v in value.items()}


def _include(body: dict) -> bool:
    include = body.get("include") or []
    if not isinstance(include, list) or any(i != ENCRYPTED for i in include):
        raise InputError(f"`include` takes only {ENCRYPTED!r} here (there are no logprobs, tool sources or "
                         "images to include).")
    return ENCRYPTED in include


def _summary(body: dict) -> str | None:
    reasoning = body.get("reasoning") or {}
    if isinstance(reasoning, dict):
        if set(reasoning) - {"effort", "summary", "generate_summary"}:
            raise InputError("`reasoning` takes effort and summary.")
        summary = reasoning.get("summary") or reasoning.get("generate_summary")
        if summary not in (None, "auto", "concise", "detailed"):
            raise InputError("reasoning.summary must be auto, concise or detailed.")
        return summary
    return None


def parse_responses(body, *, limit: int, max_new_tokens: int, default_effort: str) -> ResponsesCall:
    """The request's own parts; its turns come later (`Turns`), once a previous response is loaded."""
    if not isinstance(body, dict):
        raise InputError("The request body must be a JSON object.")
    check_params(body, RESPONSES_TABLE, "/v1/responses")
    if body.get("input") is None:
        raise InputError("`input` is required: a string, or a list of items.")
    items = body["input"] if isinstance(body["input"], list) else [body["input"]]
    if not items or len(items) > MAX_ITEMS:
        raise InputError(f"`input` must hold 1 to {MAX_ITEMS} items.")
    if body.get("truncation") not in (None, "disabled"):
        raise InputError('`truncation` "auto" is not supported here: a request that does not fit is refused.')
    fmt = _text_format(body)
    tools = client_tools(body.get("tools"), body.get("tool_choice"), flat=True)
    max_calls = body.get("max_tool_calls")
    if max_calls is not None and (isinstance(max_calls, bool) or not isinstance(max_calls, int) or max_calls < 0):
        raise InputError("`max_tool_calls` must be a whole number, 0 or more.")
    if max_calls == 0:  # no call allowed: nothing is offered
        tools = client_tools([], None)
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InputError("`instructions` must be text.")
    tokens = token_budget(body.get("max_output_tokens"), "max_output_tokens", MODEL_WINDOW) or max_new_tokens
    temperature, top_p = body.get("temperature"), body.get("top_p")
    options = ChatOptions(effort=effort_of(body, default_effort), instructions=instructions or "",
                          temperature=1.0 if temperature is None else temperature, max_new_tokens=tokens,
                          tools=tools.servers, functions=[f["function"] for f in tools.functions],
                          top_p=1.0 if top_p is None else top_p, namespaces=tools.namespaces, response_format=fmt)
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise InputError("`previous_response_id` must be a response id (resp_...).")
    api = ApiCall([], options, stream=boolean(body, "stream"), include_usage=stream_flags(body),
                  store=boolean(body, "store", True), model=str(body.get("model") or ""), call=tools.call,
                  metadata=metadata_of(body.get("metadata")), end_user=end_user(body),
                  labels=_labels(body.get("client_metadata")))
    echo = {"instructions": instructions, "max_output_tokens": body.get("max_output_tokens"),
            "tool_choice": body.get("tool_choice") or "auto", "tools": body.get("tools") or [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True), "temperature": options.temperature,
            "top_p": options.top_p, "max_tool_calls": max_calls, "user": body.get("user"),
            "safety_identifier": body.get("safety_identifier"), "prompt_cache_key": body.get("prompt_cache_key"),
            "text": {"format": (body.get("text") or {}).get("format") or {"type": "text"}}}
    return ResponsesCall(api, previous, _include(body), _summary(body), echo, items)

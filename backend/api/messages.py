"""A chat-completions request body, checked, turned into what the worker takes: harmony turns and
prompt settings. No chat template: the worker renders these with openai-harmony as it does the
page's chats, so a client's text with `<|start|>` in it stays text.

- system and developer messages become the developer instructions;
- an assistant message's `reasoning_content` (or `reasoning`) is its analysis, `tool_calls` are
  harmony calls to `functions.NAME`, and the `tool` messages after them the functions' results;
- the client's `tools` are the developer functions (backend/api/functions.py, with tool_choice); the
  deployment's built-in python and browser are not offered here (a client would not expect the server
  to run code for it);
- every other parameter is honoured or refused by name (backend/api/params.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from backend.api.functions import client_tools
from backend.api.params import CHAT_TABLE, boolean, check_params, response_format_of, token_budget
from backend.harmony.codec import PromptMessage, assistant_message, tool_message
from backend.services.options import ChatOptions, check_effort, clean_text
from backend.tools.user_functions import NAME as FUNCTION_NAME
from core.config import MODEL_WINDOW
from core.errors import InputError

MAX_MESSAGES = 500
MAX_STOPS = 4
JSON_CALL = "<|constrain|>json"


@dataclass
class ApiCall:
    """A checked request: what to run, and how to answer."""

    turns: list[PromptMessage]
    options: ChatOptions
    stream: bool = False
    include_usage: bool = False
    store: bool = False
    model: str = ""
    texts: list[str] = field(default_factory=list)  # the user messages' text (for storing)
    call: str | None = None  # tool_choice: None, the model chooses; "": it must call; a name: that function
    stop: tuple[str, ...] = ()  # the answer ends before the first of these
    metadata: dict[str, str] = field(default_factory=dict)
    end_user: str | None = None  # safety_identifier / user: who the request is for (the audit log)
    labels: dict[str, str] = field(default_factory=dict)  # client_metadata: the client's own labels (audit log)


def _text(content, limit: int, role: str) -> str:
    """A message's text: a string, or a list of text parts (gpt-oss reads no images)."""
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("text", "input_text"):
                raise InputError(f"A {role} message has a part gpt-oss cannot read (only text parts are taken).")
            parts.append(str(part.get("text", "")))
        content = "".join(parts)
    if not isinstance(content, str):
        raise InputError(f"A {role} message's content must be text.")
    return clean_text(content, limit, f"{role} message")


def call_name(name, what: str = "A tool call's function") -> str:
    """A function's name as a call carries it back: a name harmony's header can hold as a name (a name
    with spaces or `to=` would become header text)."""
    if not isinstance(name, str) or not FUNCTION_NAME.match(name):
        raise InputError(f"{what} name must be 1-64 letters, digits or _, not starting with a digit.")
    return name


def call_arguments(arguments, limit: int) -> str:
    """A call's arguments as the model wrote them: text (JSON), or an object the client parsed."""
    if arguments is None or arguments == "":
        return "{}"
    if not isinstance(arguments, (str, dict, list)):
        raise InputError("A tool call's arguments must be a JSON string.")
    return clean_text(arguments if isinstance(arguments, str) else json.dumps(arguments), 10 * limit,
                      "tool call's arguments")


def _assistant(m: dict, text: str, names: dict[str, str], limit: int) -> list[dict]:
    """An assistant message as harmony messages: its reasoning, its words, its function calls."""
    reasoning = m.get("reasoning_content") or m.get("reasoning") or ""
    calls = m.get("tool_calls") or []
    if not isinstance(reasoning, str):
        raise InputError("An assistant message's reasoning_content must be text.")
    if not isinstance(calls, list):
        raise InputError("An assistant message's tool_calls must be a list.")
    out = [assistant_message(clean_text(reasoning, 10 * limit, "reasoning"), "analysis")] if reasoning else []
    if text:  # words beside calls are a preamble (commentary); alone they are the answer
        out.append(assistant_message(text, "commentary" if calls else "final"))
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            raise InputError("Each tool call needs a function with a name.")
        name = call_name(function["name"])
        names[str(call.get("id", ""))] = name
        out.append(assistant_message(call_arguments(function.get("arguments"), limit), "commentary",
                                     f"functions.{name}", JSON_CALL))
    return out


def to_turns(messages, limit: int) -> tuple[list[PromptMessage], str, list[str]]:
    """The turns, the developer instructions and the user texts of a `messages` list."""
    if not isinstance(messages, list) or not messages:
        raise InputError("`messages` must be a non-empty list.")
    if len(messages) > MAX_MESSAGES:
        raise InputError(f"At most {MAX_MESSAGES} messages per request.")
    turns: list[PromptMessage] = []
    instructions, users, names = [], [], {}
    for m in messages:
        if not isinstance(m, dict):
            raise InputError("Each message must be an object with a role and content.")
        role = m.get("role")
        text = _text(m.get("content"), limit, str(role))
        if role in ("system", "developer"):
            instructions.append(text)
        elif role == "user":
            turns.append(PromptMessage("user", text))
            users.append(text)
        elif role == "assistant":
            harmony = _assistant(m, text, names, limit)
            if turns and turns[-1].role == "assistant":  # the same turn goes on after a tool's result
                turns[-1].harmony += harmony
            else:
                turns.append(PromptMessage("assistant", "", harmony=harmony))
            turns[-1].content = text if not m.get("tool_calls") else turns[-1].content
        elif role == "tool":
            name = names.get(str(m.get("tool_call_id", "")))
            if name is None or not turns or turns[-1].role != "assistant":
                raise InputError("A tool message must answer a tool call (its tool_call_id) of the assistant "
                                 "message before it.")
            turns[-1].harmony.append(tool_message(f"functions.{name}", "commentary", text))
        else:
            raise InputError(f"Unknown message role {role!r}: use system, developer, user, assistant or tool.")
    last = turns[-1] if turns else None
    if last is None or (last.role == "assistant" and not (last.harmony and last.harmony[-1].get("role") == "tool")):
        raise InputError("The last message must be the user's (or a tool's result).")
    return turns, "\n\n".join(t for t in instructions if t), users


def effort_of(body: dict, default: str, *names: str) -> str:
    """The reasoning effort: `reasoning_effort`, `reasoning: {"effort": ...}` (both APIs), or vLLM's
    `chat_template_kwargs: {"reasoning_effort": ...}`."""
    reasoning, template = body.get("reasoning") or {}, body.get("chat_template_kwargs") or {}
    if not isinstance(reasoning, dict):
        raise InputError('`reasoning` must be an object such as {"effort": "high"}'
                         + ("; or send reasoning_effort." if "reasoning_effort" in names else "."))
    if not isinstance(template, dict) or set(template) - {"reasoning_effort"}:
        raise InputError("`chat_template_kwargs` takes only reasoning_effort here (harmony renders the prompt; "
                         "there is no chat template).")
    return check_effort(body.get("reasoning_effort") or reasoning.get("effort") or template.get("reasoning_effort")
                        or default, "reasoning_effort" if body.get("reasoning_effort") else "reasoning.effort")


def stop_strings(value) -> tuple[str, ...]:
    """`stop`: a string or up to 4 strings; the answer ends before the first."""
    stops = [value] if isinstance(value, str) else value if value is not None else []
    if not isinstance(stops, list) or len(stops) > MAX_STOPS or not all(isinstance(x, str) and x for x in stops):
        raise InputError(f"`stop` must be a string or a list of at most {MAX_STOPS} non-empty strings.")
    return tuple(stops)


def metadata_of(value) -> dict[str, str]:
    if value is None:
        return {}
    if (not isinstance(value, dict) or len(value) > 16
            or not all(isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
                       for k, v in value.items())):
        raise InputError("`metadata` must be at most 16 pairs of strings (keys up to 64 characters, values up "
                         "to 512).")
    return dict(value)


def end_user(body: dict) -> str | None:
    """Who the request is for (`safety_identifier`, or the older `user`), for the audit log."""
    value = body.get("safety_identifier") or body.get("user")
    if value is not None and (not isinstance(value, str) or len(value) > 256):
        raise InputError("`safety_identifier` / `user` must be a string of at most 256 characters.")
    return value or None


def stream_flags(body: dict) -> bool:
    """`stream_options`: include_usage (returned); include_obfuscation must not be asked for."""
    options = body.get("stream_options") or {}
    if not isinstance(options, dict) or set(options) - {"include_usage", "include_obfuscation"}:
        raise InputError("`stream_options` takes include_usage (and include_obfuscation: false).")
    if options.get("include_obfuscation"):
        raise InputError("`stream_options.include_obfuscation` is not supported here: events are not padded.")
    return bool(options.get("include_usage"))


def parse_body(body, *, limit: int, max_new_tokens: int, default_effort: str, store: bool) -> ApiCall:
    """The request, or an InputError that says what is wrong (never a traceback)."""
    if not isinstance(body, dict):
        raise InputError("The request body must be a JSON object.")
    check_params(body, CHAT_TABLE, "/v1/chat/completions")
    if body.get("n") not in (None, 1):
        raise InputError("`n` must be 1: one answer per request.")
    turns, instructions, users = to_turns(body.get("messages"), limit)
    tokens = (token_budget(body.get("max_completion_tokens"), "max_completion_tokens", MODEL_WINDOW)
              or token_budget(body.get("max_tokens"), "max_tokens", MODEL_WINDOW) or max_new_tokens)
    temperature, top_p = body.get("temperature"), body.get("top_p")
    tools = client_tools(body.get("tools"), body.get("tool_choice"))
    options = ChatOptions(effort=effort_of(body, default_effort, "reasoning_effort"), instructions=instructions,
                          temperature=1.0 if temperature is None else temperature, max_new_tokens=tokens,
                          tools=tools.servers, functions=[f["function"] for f in tools.functions],
                          top_p=1.0 if top_p is None else top_p,
                          response_format=response_format_of(body.get("response_format"), "response_format", nested=True))
    return ApiCall(turns, options, stream=boolean(body, "stream"), include_usage=stream_flags(body),
                   store=boolean(body, "store", store), model=str(body.get("model") or ""), texts=users,
                   call=tools.call, stop=stop_strings(body.get("stop")), metadata=metadata_of(body.get("metadata")),
                   end_user=end_user(body))

"""Harmony on both sides of a chat-only server (OpenAI /v1/chat/completions, Ollama /api/chat).

Such servers take messages, not token ids, and answer with reasoning and answer text in separate
fields. So that every engine still looks the same to the worker (ids in, ids out), this module
 - states the conversation as OpenAI chat messages (`chat_prompt`), handed to the engine beside
   the harmony prompt ids, and
 - turns the server's deltas back into harmony token ids (`DeltaWriter`), which the worker parses
   with the same HarmonyStream as local output: reasoning, answer and tool calls behave the same.
Text from a reasoning or answer field is encoded as ordinary text (a literal `<|end|>` in it stays
text); only a server that returns raw harmony in its content has its markup read as harmony.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from backend.harmony.codec import PromptMessage, PromptSettings, message_text
from backend.harmony.structured import chat_format
from core.config import DEFAULT_EFFORT

ANALYSIS = "<|channel|>analysis<|message|>"
FINAL = "<|channel|>final<|message|>"
START = "<|start|>assistant"
END = "<|end|>"
NEXT = END + START  # ends one assistant message and opens the next
SPECIAL_OPEN = "<|"


@dataclass
class ChatPrompt:
    """The conversation as an OpenAI-style chat request body's parts."""

    messages: list[dict]
    effort: str = DEFAULT_EFFORT
    tools: list[dict] = field(default_factory=list)  # OpenAI "tools" entries
    # structured output, as OpenAI's chat `response_format` (the server applies it to the final answer)
    response_format: dict | None = None


def chat_prompt(turns: list[PromptMessage], settings: PromptSettings) -> ChatPrompt:
    """Instructions become a system message (servers map it to harmony's developer message);
    earlier reasoning is left out, as harmony's own rendering drops it."""
    messages = [{"role": "system", "content": settings.instructions}] if settings.instructions else []
    for turn in turns:
        if turn.role == "assistant" and turn.harmony:
            messages += _assistant_chat(turn)
        else:
            messages.append({"role": turn.role, "content": turn.content})
    tools = [{"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                               "parameters": t.get("parameters") or {"type": "object"}}}
             for t in settings.tools]
    fmt = settings.response_format
    return ChatPrompt(messages, settings.effort, tools, chat_format(fmt) if fmt is not None else None)


def _assistant_chat(turn: PromptMessage) -> list[dict]:
    """An assistant turn with tool steps as OpenAI chat messages: each function call an assistant
    message with `tool_calls`, each result a `role: "tool"` message, then the answer. Reasoning is left
    out (harmony drops it too); built-in python/browser calls have no chat form and are not offered
    in chat mode."""
    out: list[dict] = []
    call_id = None
    for i, m in enumerate(turn.harmony):
        text = message_text(m)
        recipient = m.get("recipient") or ""
        if m.get("role") == "assistant" and recipient.startswith("functions."):
            call_id = f"call_{i}"
            out.append({"role": "assistant", "content": None, "tool_calls": [{
                "id": call_id, "type": "function",
                "function": {"name": recipient.removeprefix("functions."), "arguments": text}}]})
        elif m.get("role") == "tool" and call_id is not None and str(m.get("name", "")).startswith("functions."):
            out.append({"role": "tool", "tool_call_id": call_id, "content": text})
        elif m.get("role") == "assistant" and m.get("channel") == "final":
            out.append({"role": "assistant", "content": text})
    if not any(m.get("content") for m in out if m["role"] == "assistant") and turn.content:
        out.append({"role": "assistant", "content": turn.content})
    return out


class DeltaWriter:
    """One response's deltas -> harmony token ids, continuing a prompt that ends `<|start|>assistant`."""

    def __init__(self, encoding):
        self.encoding = encoding
        self.channel: str | None = None  # analysis | final | call | raw | None (nothing written yet)
        self._raw_pending = ""
        self._after_end = False  # raw content just closed a message with <|end|>
        self.content_is_harmony: bool | None = None  # decided on the content's first characters
        self._undecided = ""

    def _markup(self, text: str) -> list[int]:
        return list(self.encoding.encode(text, allowed_special="all"))

    def _text(self, text: str) -> list[int]:
        return list(self.encoding.encode(text, disallowed_special=())) if text else []

    def _open(self, channel: str, header: str) -> list[int]:
        if self.channel == channel:
            return []
        prefix = self._next()
        self.channel = channel
        return self._markup(prefix + header)

    def _next(self) -> str:
        """What opens another assistant message after what was written so far."""
        if self.channel is None:
            return ""
        return START if self._after_end else NEXT

    def reasoning(self, text: str) -> list[int]:
        return self._open("analysis", ANALYSIS) + self._text(text) if text else []

    def answer(self, text: str) -> list[int]:
        return self._open("final", FINAL) + self._text(text) if text else []

    def content(self, text: str) -> list[int]:
        """The content field: the answer, or raw harmony if that is what the server sends."""
        if self.content_is_harmony is None:
            self._undecided += text
            self.content_is_harmony = looks_like_harmony(self._undecided)
            if self.content_is_harmony is None:
                return []
            text, self._undecided = self._undecided, ""
        return self.raw(text) if self.content_is_harmony else self.answer(text)

    def tool_call(self, name: str, arguments: str | dict) -> list[int]:
        """A whole function call: its own assistant message to functions.NAME, ending in <|call|>,
        written as gpt-oss writes one (so it parses exactly like a call a token-mode engine returns)."""
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        prefix = self._next()
        self.channel, self._after_end = "call", False
        return (self._markup(f"{prefix} to=functions.{name}<|channel|>commentary <|constrain|>json<|message|>")
                + self._text(args) + self._markup("<|call|>"))

    def raw(self, text: str) -> list[int]:
        """Content that is itself harmony (llama.cpp --reasoning-format none). A special token's
        text split across two deltas is held back until it is whole."""
        text = self._raw_pending + text
        cut = text.rfind(SPECIAL_OPEN)
        if cut != -1 and "|>" not in text[cut:]:
            text, self._raw_pending = text[:cut], text[cut:]
        else:
            self._raw_pending = ""
        self.channel = self.channel or "raw"
        out = ""
        for i, piece in enumerate(text.split(END)):
            if i:  # an <|end|> closed a message
                out += END
                self._after_end = True
            if piece:
                if self._after_end:
                    out += self._reopen(piece)
                    self._after_end = False
                out += piece
        return self._markup(out) if out else []

    def _reopen(self, text: str) -> str:
        """llama.cpp's raw mode drops the next message's header (`...<|end|>3 km = 3000 m`): put it back.
        Text with no header of its own is the answer, as the server's parsed mode would say."""
        if text.startswith("<|start|>"):
            return ""
        if text.startswith("<|channel|>"):
            return START
        self.channel = "final"
        return START + FINAL

    def finish(self, finish_reason: str | None) -> list[int]:
        """Close the last message the way the model would have: <|return|> after an answer."""
        ids = self.answer(self._undecided)  # content too short to tell is plain answer text
        ids += self._markup(self._raw_pending) if self._raw_pending else []
        self._undecided = self._raw_pending = ""
        if finish_reason in ("stop", "tool_calls") and self.channel == "final":
            ids += self._markup("<|return|>")
        elif finish_reason == "stop" and self.channel == "analysis":
            ids += self._markup("<|end|>")
        return ids


RAW_MARKERS = ("<|channel|>", "<|start|>", "<|message|>")


def looks_like_harmony(content: str) -> bool | None:
    """Does a content field carry raw harmony (it opens with harmony markup)? None: too short to tell."""
    text = content.lstrip()
    if not text or any(m.startswith(text) and m != text for m in RAW_MARKERS):
        return None
    return any(text.startswith(m) for m in RAW_MARKERS)

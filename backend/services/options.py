"""A turn's inputs, checked at the boundary: the message text and the chat's settings.

Every text is cleaned the same way (control characters, lone surrogates, the length limit) and
every number must be finite and in range, so a bad value gets a sentence, never a stack trace.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import asdict, dataclass, replace

from backend.harmony.structured import ResponseFormat
from core.config import (
    DEFAULT_EFFORT,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    EFFORTS,
    MAX_INSTRUCTIONS_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_NEW_TOKENS_LIMIT,
    TEMPERATURE_RANGE,
)
from core.errors import InputError

ALLOWED_CONTROL = {"\n", "\t"}


@dataclass
class ChatOptions:
    effort: str = DEFAULT_EFFORT
    instructions: str = ""
    temperature: float = DEFAULT_TEMPERATURE
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    tools: list[str] | None = None  # tools the model may use in this conversation; None: the defaults
    functions: list[dict] | str | None = None  # the user's own functions (JSON Schema); results come from them
    top_p: float = DEFAULT_TOP_P  # nucleus sampling (the API's top_p; the page keeps gpt-oss's 1.0)
    # an API client's namespaces of functions: {name, description, tools: [functions]} (Responses only)
    namespaces: list[dict] | None = None
    response_format: ResponseFormat | None = None  # structured output (an API client's json_schema/json_object)

    def to_settings(self) -> dict:
        """What a conversation stores of its settings (reopening it sets the page the same)."""
        return asdict(self)


def clean_text(text: str, limit: int = MAX_MESSAGE_CHARS, what: str = "message") -> str:
    """Drop NUL and other control characters, replace lone surrogates, enforce the limit."""
    text = (text or "").encode("utf-8", errors="replace").decode("utf-8")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in ALLOWED_CONTROL or unicodedata.category(ch) != "Cc")
    if len(text) > limit:
        raise InputError(f"Your {what} is {len(text):,} characters long; the limit is {limit:,}. "
                         "Please shorten it.")
    return text


def _number(value, kind: type, what: str, low, high):
    """A finite number in range, or an InputError that says which setting is wrong."""
    try:
        number = kind(float(value)) if kind is int and isinstance(value, float) else kind(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if number is None or not math.isfinite(number) or not low <= number <= high:
        raise InputError(f"{what} must be a number between {low:,} and {high:,}.")
    return number


def check_effort(value, what: str = "Reasoning effort") -> str:
    """The one check of a reasoning effort, wherever it comes from (`what`: the name the sender used)."""
    if value not in EFFORTS:
        raise InputError(f"{what} must be one of {', '.join(EFFORTS)}.")
    return value


def check_options(options: ChatOptions, token_limit: int = MAX_NEW_TOKENS_LIMIT,
                  instructions_limit: int = MAX_INSTRUCTIONS_CHARS) -> ChatOptions:
    """`token_limit`: the most new tokens a turn may ask for (the page's slider; the API: the model's window).
    `instructions_limit`: a person types short instructions; an agent (Codex: ~20,000 characters) long ones."""
    check_effort(options.effort)
    temperature = _number(options.temperature, float, "Temperature", *TEMPERATURE_RANGE)
    top_p = _number(options.top_p, float, "top_p", 0.0, 1.0)
    if top_p == 0:
        raise InputError("top_p must be above 0 (1 keeps every token; use temperature 0 for greedy answers).")
    max_new_tokens = _number(options.max_new_tokens, int, "Max new tokens", 1, token_limit)
    instructions = clean_text(options.instructions, instructions_limit, "instructions")
    return replace(options, instructions=instructions, temperature=temperature, max_new_tokens=max_new_tokens,
                   top_p=top_p)

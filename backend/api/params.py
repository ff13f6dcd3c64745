"""Every parameter of OpenAI's Chat Completions and Responses request bodies, and what this server does
with it: honoured, or refused with a 400 that names it. Nothing is silently ignored: a parameter that
is not in these tables is refused too (a typo, or one newer than this server).

A refused parameter is refused only when it asks for something: sent with its neutral value (`null`,
`false`, `0`, `1` for `n`, ...), it asks for nothing this server does not do, and clients that always
send the neutral value keep working. README's API section is written from these tables (a test checks
that it lists each one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from backend.harmony.structured import ResponseFormat, response_format
from core.errors import InputError


def _none(value) -> bool:
    return value is None


def _falsy(value) -> bool:
    return value is None or value is False or value == 0 or value == {} or value == []


@dataclass(frozen=True)
class Param:
    name: str
    honoured: str = ""  # what this server does with it (README says it); empty: refused
    refused: str = ""  # the 400's sentence when it asks for something this server does not do
    neutral: Callable[[object], bool] = _none  # a value that asks for nothing (accepted when refused)

    def check(self, value) -> None:
        if self.refused and not self.neutral(value):
            raise InputError(f"`{self.name}` is not supported here: {self.refused}")


def _honoured(name: str, what: str) -> Param:
    return Param(name, honoured=what)


def _refused(name: str, why: str, neutral: Callable[[object], bool] = _none) -> Param:
    return Param(name, refused=why, neutral=neutral)


NO_PENALTY = "gpt-oss is served with its recommended sampling (temperature, top_p); there are no penalties."
NO_LOGPROBS = "the worker does not return token probabilities."
NO_SEED = ("answers are sampled in a shared batch, so a seed cannot make one request repeatable; use "
           "temperature 0 for a repeatable answer.")
CACHE_HINT = "a caching hint: accepted; it never changes an answer (this server keeps no prompt cache across requests)."
END_USER = "kept in the audit log entry of the request (who the request is for)."
NO_MODERATION = "this server runs no moderation model."
NO_SERVICE_TIER = "this server has one tier."
TIERS = (None, "auto", "default")

# The parameters both APIs share, then each API's own.
COMMON = [
    _honoured("model", "must name the served model (see /v1/models), or be left out."),
    _honoured("stream", "true streams server-sent events; must be a boolean."),
    _honoured("temperature", "0-2, per request."),
    _honoured("top_p", "with an inference server (--engine openai); refused below 1 by the in-process model."),
    _honoured("tools", "functions (the client runs them); see tool_choice. {\"type\": \"mcp\", \"server_label\": NAME} "
                       "enables one of the deployment's MCP servers (run here; see Tools from MCP servers)."),
    _honoured("tool_choice", 'auto, none, required, or {"type": "function", "function"/"name": ...}: required and '
                             "a named function start the model's message as that call (harmony's own header)."),
    _honoured("parallel_tool_calls", "gpt-oss makes one call per message, which either value allows."),
    _honoured("store", "true keeps the exchange as a conversation of the key's owner (their sidebar)."),
    _honoured("metadata", "up to 16 string pairs, kept with a stored conversation (and returned by Responses)."),
    _honoured("user", END_USER),
    _honoured("safety_identifier", END_USER),
    _honoured("prompt_cache_key", CACHE_HINT),
    _honoured("prompt_cache_retention", CACHE_HINT),
    _honoured("prompt_cache_options", CACHE_HINT),
    _honoured("stream_options", "include_usage adds a usage chunk (Chat Completions); include_obfuscation must "
                                "be false or left out."),
    _refused("service_tier", NO_SERVICE_TIER, lambda v: v in TIERS),
    _refused("top_logprobs", NO_LOGPROBS, _falsy),
    _refused("moderation", NO_MODERATION),
]

CHAT_COMPLETIONS = COMMON + [
    _honoured("messages", "system/developer (instructions), user, assistant (with reasoning_content and "
                          "tool_calls), tool."),
    _honoured("max_tokens", "the answer's token budget, reasoning included (1 to the model's window); cut to "
                            "what the window leaves after the prompt. A prompt that does not fit: 400 "
                            "context_length_exceeded."),
    _honoured("max_completion_tokens", "as max_tokens."),
    _honoured("reasoning_effort", "low, medium or high: harmony's reasoning effort."),
    _honoured("reasoning", '{"effort": ...}, as reasoning_effort.'),
    _honoured("chat_template_kwargs", "vLLM's extension: its reasoning_effort is read as reasoning_effort (there is "
                                      "no chat template here: harmony renders the prompt); other keys are refused."),
    _honoured("stop", "up to 4 strings: the answer ends before the first one (finish_reason stop)."),
    _honoured("n", "1 (or null): one answer per request."),
    _honoured("response_format", 'text, json_object, or json_schema ({"name", "schema", "strict"}): the answer is '
                                 "JSON that matches, by constrained decoding (llguidance) while the model writes "
                                 "its final answer; its reasoning stays free. Refused (400) where the engine "
                                 "cannot constrain (an inference server)."),
    _refused("seed", NO_SEED),
    _refused("frequency_penalty", NO_PENALTY, _falsy),
    _refused("presence_penalty", NO_PENALTY, _falsy),
    _refused("logit_bias", "the worker takes no per-request logit bias.", _falsy),
    _refused("logprobs", NO_LOGPROBS, _falsy),
    _refused("modalities", "gpt-oss writes text only.", lambda v: v is None or v == ["text"]),
    _refused("audio", "gpt-oss writes text only."),
    _refused("prediction", "there is no speculative decoding from a predicted output here."),
    _refused("web_search_options", "the browser tool runs on the page; over the API send your own functions."),
    _refused("verbosity", "gpt-oss has no verbosity setting; say it in the instructions."),
    _refused("functions", "the old functions API: send `tools` instead.", _falsy),
    _refused("function_call", "the old functions API: send `tool_choice` instead."),
]

RESPONSES = COMMON + [
    _honoured("input", "a string, or items: messages (user, system, developer, assistant), reasoning, "
                       "function_call, function_call_output."),
    _honoured("instructions", "the developer instructions (not carried over by previous_response_id)."),
    _honoured("reasoning", '{"effort": low|medium|high, "summary": ...}: the reasoning comes back in full as '
                           "reasoning_text where the display policy allows, as a summary where it says summary."),
    _honoured("max_output_tokens", "the answer's token budget, reasoning included; cut to what the window "
                                   "leaves after the prompt."),
    _honoured("previous_response_id", "a stored response of the same owner: its conversation goes on."),
    _honoured("text", '{"format": ...}: text, json_object, or json_schema ({"name", "schema", "strict"}), as '
                      "response_format; verbosity is refused."),
    _honoured("include", "reasoning.encrypted_content returns the reasoning as an opaque (encoded, not "
                         "encrypted) blob a stateless client sends back; other values are refused."),
    _honoured("truncation", '"disabled" (the default): a request that does not fit is refused.'),
    _honoured("max_tool_calls", "functions are the client's: each response holds at most one call."),
    _honoured("client_metadata", "the client's own labels (Codex sends its session ids): kept, each cut to 200 "
                                 "characters, in the request's audit log entry."),
    _refused("background", "answers stream or come whole; there is no background mode.", _falsy),
    _refused("background_options", "there is no background mode."),
    _refused("conversation", "use previous_response_id (conversations are the page's)."),
    _refused("prompt", "there are no stored prompt templates here; send instructions."),
    _refused("context_management", "a request that does not fit is refused, not compacted."),
    _refused("image", "gpt-oss reads text only."),
    _refused("access_programs", "this server has no access programs."),
]

CHAT_TABLE = {p.name: p for p in CHAT_COMPLETIONS}
RESPONSES_TABLE = {p.name: p for p in RESPONSES}


def check_params(body: dict, table: dict[str, Param], api: str) -> None:
    """Refuse unknown parameters and refused ones that ask for something, each by name."""
    unknown = sorted(k for k in body if k not in table)
    if unknown:
        raise InputError(f"Unknown parameter(s) for {api}: {', '.join(unknown)}. README lists every parameter "
                         "this server honours or refuses.")
    for name, value in body.items():
        table[name].check(value)


def boolean(body: dict, name: str, default: bool = False) -> bool:
    """A boolean parameter; `"false"` (a string) is refused, not read as true."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(f"`{name}` must be true or false, not {value!r}.")
    return value


def token_budget(value, name: str, limit: int) -> int | None:
    """A max-tokens parameter: a whole number from 1 to `limit`, or None when left out."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InputError(f"`{name}` must be a whole number from 1 to {limit:,} (the model's context window), "
                         f"not {value!r}.")
    return value


def response_format_of(value, where: str, nested: bool) -> ResponseFormat | None:
    """`response_format` (Chat Completions: the schema under "json_schema", `nested`) or `text.format`
    (Responses: beside "type"): None for plain text, else the format the answer is held to."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return response_format("json_object", None)
    if kind != "json_schema":
        raise InputError(f"`{where}` takes a type of text, json_object or json_schema.")
    spec = value.get("json_schema") if nested else value
    if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
        raise InputError(f"`{where}` json_schema needs a `schema` object (and a `name`).")
    # strict: the schema is enforced token by token either way (constrained decoding)
    return response_format(spec.get("name"), spec.get("schema", {}), spec.get("description") or "")

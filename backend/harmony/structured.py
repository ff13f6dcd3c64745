"""Structured output: an answer that is JSON matching a schema, guaranteed by constrained decoding.

The model reasons freely (analysis), may call tools, and then writes its final answer; only the final
message's text is constrained, and a call to a strict function (OpenAI's `strict: true`): its arguments.
A `FinalAnswerGrammar` follows one completion token by token with harmony's own StreamableParser (never by
reading decoded text): once such a message's `<|message|>` has been written, each next token is masked to
what llguidance's matcher allows for the schema, and when the JSON is complete, to `<|return|>` (an
answer) or `<|call|>` (a call) alone. The engine asks it for a mask before each token (backend/engines/
constraints.py); the engine knows nothing of harmony, only that a request may carry a constraint. For
llama.cpp in token mode the same spec becomes a GBNF grammar (`FinalAnswerSpec.gbnf`, backend/harmony/
gbnf.py).

The format is also told to the model the way harmony says: a "# Response Formats" section in the developer
message (`formats_section`), so what the mask forces is what it was asked for.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from openai_harmony import HarmonyError, Role, StreamableParser, StreamState

from backend.harmony.gbnf import arguments_grammar, completion_grammar
from backend.harmony.vocab import ENV_VAR, O200K_PATTERN, VOCAB_FILE, read_ranks, special_ids, vocabulary_file
from core.errors import InputError

MAX_SCHEMA_CHARS = 20_000  # as a function's parameters: a schema is prompt text too
NOT_INSTALLED = ("Structured output needs the llguidance package (constrained decoding), which is not "
                 "installed here: `pip install llguidance`, or send response_format {\"type\": \"text\"}.")


@dataclass(frozen=True)
class ResponseFormat:
    """What the answer must be: JSON matching `schema` (None: any JSON object), named for the prompt."""

    name: str = "response"
    schema: dict | None = None
    description: str = ""

    def grammar_schema(self) -> dict:
        """The schema the mask enforces: compact JSON (no free whitespace, which a small model could
        write forever instead of closing the object)."""
        schema = dict(self.schema) if self.schema is not None else {"type": "object"}
        given = schema.get("x-guidance")  # llguidance's own options, where a client sent some
        schema["x-guidance"] = {**(given if isinstance(given, dict) else {}), "whitespace_flexible": False}
        return schema


def chat_format(fmt: ResponseFormat) -> dict:
    """The format as OpenAI's chat `response_format`, for an inference server that applies it itself."""
    if fmt.schema is None:
        return {"type": "json_object"}
    spec = {"name": fmt.name, "schema": fmt.schema, "strict": True}
    return {"type": "json_schema", "json_schema": {**spec, **({"description": fmt.description}
                                                               if fmt.description else {})}}


def answer_mismatch(fmt: ResponseFormat, text: str) -> str | None:
    """None when `text` is JSON that matches the format; else what is wrong, in a few words. The answer of
    an inference server that applies the format itself is checked with this: what a server sends is
    trusted no further (free whitespace allowed, as servers write it)."""
    llguidance = _llguidance()
    schema = {**fmt.grammar_schema(), "x-guidance": {"whitespace_flexible": True}}
    tokenizer = _shared_grammars().tokenizer()
    matcher = llguidance.LLMatcher(tokenizer, llguidance.grammar_from("json_schema", json.dumps(schema)),
                                   log_level=0)
    text, read = text.strip(), []
    for token in tokenizer.tokenize_str(text):
        if not matcher.consume_token(token):
            return f"it stops matching the schema at {text[len(tokenizer.decode_str(read)):][:60]!r}"
        read.append(token)
    return None if text and matcher.is_accepting() else "its JSON is incomplete"


def formats_section(fmt: ResponseFormat) -> str:
    """harmony's "# Response Formats" section of the developer message."""
    schema = json.dumps(fmt.schema if fmt.schema is not None else {"type": "object"}, ensure_ascii=False,
                        separators=(",", ":"))
    about = f"// {fmt.description}\n" if fmt.description else ""
    return f"# Response Formats\n\n## {fmt.name}\n\n{about}{schema}"


def response_format(name, schema, description="") -> ResponseFormat:
    """A client's format, checked: a JSON Schema object that llguidance can compile (an InputError says
    why not)."""
    if schema is not None and not isinstance(schema, dict):
        raise InputError("The response format's `schema` must be a JSON Schema object.")
    if not isinstance(name or "", str) or not isinstance(description or "", str):
        raise InputError("The response format's `name` and `description` must be strings.")
    fmt = ResponseFormat(name=(name or "response")[:64], schema=schema, description=description or "")
    if len(json.dumps(fmt.grammar_schema())) > MAX_SCHEMA_CHARS:
        raise InputError(f"The response format's schema is over {MAX_SCHEMA_CHARS:,} characters.")
    llguidance = _llguidance()
    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(_grammar(llguidance, fmt))
    if failed:
        raise InputError(f"The response format's schema cannot be enforced: {'; '.join(messages)[:500]}.")
    return fmt


def _llguidance():
    try:
        import llguidance
    except ImportError:
        raise InputError(NOT_INSTALLED) from None
    return llguidance


def _grammar(llguidance, fmt: ResponseFormat) -> str:
    return llguidance.grammar_from("json_schema", json.dumps(fmt.grammar_schema()))


def call_schema(parameters: dict) -> str:
    """A strict function's parameters as the schema its arguments are held to: JSON written the way
    harmony's calls are (`{"city": "Paris"}`), with no other whitespace."""
    separators = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
    return json.dumps({**parameters, "x-guidance": separators})


def check_strict(name: str, parameters: dict) -> None:
    """A strict function's parameters must compile as the schema its calls are held to (an InputError
    says why not), checked when the request comes, not when the model reaches the call."""
    try:
        import llguidance
    except ImportError:
        raise InputError(f"Function {name}: strict needs the llguidance package (constrained decoding), which is "
                         "not installed here: `pip install llguidance`, or send strict false.") from None
    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(
        llguidance.grammar_from("json_schema", call_schema(parameters)))
    if failed:
        raise InputError(f"Function {name}: its parameters cannot be enforced (strict): {'; '.join(messages)[:300]}. "
                         "Send strict false, or simplify them.")


def strict_calls(functions, namespaces) -> dict[str, dict]:
    """The recipients of the strict functions among a prompt's functions and a client's namespaces (OpenAI's
    `strict: true`, kept by backend/tools/user_functions.py) and their parameters."""
    return ({f"functions.{f['name']}": f["parameters"] for f in functions or [] if f.get("strict")}
            | {f"{ns['name']}.{t['name']}": t["parameters"] for ns in namespaces or [] for t in ns["tools"]
               if t.get("strict")})


@dataclass(frozen=True)
class FinalAnswerSpec:
    """A request's constraint as it travels to the engine (SamplingParams.constraint; picklable, for a model
    in its own process): the answer's format (or None), the header ids the app wrote for the model
    (tool_choice), and the strict functions' recipients with their schemas (`call_schema`). The engine
    calls `start()` once per request."""

    fmt: ResponseFormat | None
    header: tuple[int, ...] = ()
    calls: tuple[tuple[str, str], ...] = ()

    def start(self) -> "FinalAnswerGrammar":
        return _shared_grammars().constraint(self)

    def gbnf(self) -> str | None:
        """The completion as a llama.cpp grammar (backend/harmony/gbnf.py), for a server in token mode:
        the final answer held to the format, strict calls' arguments to their parameters, the rest free.
        When the app wrote a call's header (tool_choice), only that call's arguments, if it is strict.
        None: nothing to hold."""
        grammars = _shared_grammars()
        encoding, ids = grammars.encoding, grammars.special
        calls = {recipient: json.loads(schema) for recipient, schema in self.calls}
        if self.header:
            parser = StreamableParser(encoding, Role.ASSISTANT)
            for token in self.header:
                parser.process(token)
            written = parser.current_recipient if parser.state == StreamState.CONTENT else None
            return arguments_grammar(ids, calls[written]) if written in calls else None
        if self.fmt is None and not calls:
            return None
        answer = None if self.fmt is None else self.fmt.schema if self.fmt.schema is not None else {"type": "object"}
        return completion_grammar(ids, answer, calls)


_shared: dict = {}
_shared_lock = threading.Lock()


def _shared_grammars() -> "Grammars":
    """This process's Grammars (the app's, or the model process's), over harmony's gpt-oss encoding."""
    with _shared_lock:
        if "grammars" not in _shared:
            from openai_harmony import HarmonyEncodingName, load_harmony_encoding

            _shared["grammars"] = Grammars(load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS))
        return _shared["grammars"]


class Grammars:
    """Makes a FinalAnswerGrammar per request. The vocabulary's tokenizer for llguidance takes ~2 s to
    build, so it is built once, at the first structured request, from the same o200k file and harmony
    special tokens as the model's (backend/harmony/vocab.py)."""

    def __init__(self, encoding):
        self.encoding = encoding  # harmony's gpt-oss encoding (its special tokens, as the model's ids)
        self.special = special_ids(encoding)  # read once: the tokenizer, each constraint and grammar use it
        self._tokenizer, self._lock = None, threading.Lock()

    def tokenizer(self):
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = self._build()
            return self._tokenizer

    def _build(self):
        llguidance = _llguidance()
        path = vocabulary_file()
        if path is None:
            raise InputError(f"Structured output needs the o200k vocabulary file ({VOCAB_FILE}, {ENV_VAR}).")
        specials = self.special
        return llguidance.LLTokenizer.from_tiktoken(
            encoder=read_ranks(path), special_tokens=specials, pattern=O200K_PATTERN,
            eos_token=specials["<|return|>"], n_vocab=max(specials.values()) + 1)

    def constraint(self, spec: FinalAnswerSpec) -> "FinalAnswerGrammar":
        llguidance = _llguidance()

        def matcher(target):  # the answer's ResponseFormat, or a strict call's schema (JSON)
            grammar = (_grammar(llguidance, target) if isinstance(target, ResponseFormat)
                       else llguidance.grammar_from("json_schema", target))
            return llguidance.LLMatcher(self.tokenizer(), grammar)

        return FinalAnswerGrammar(self.encoding, self.special, matcher, self.tokenizer().vocab_size, spec)


class FinalAnswerGrammar:
    """One completion's constraint: `allowed(generated)` before each token (the ids generated so far,
    the app's header included or not, as the engine has them) returns a bitmask (int32 words, bit i =
    token i allowed) while a held message is written (the final answer, or a call to a strict function),
    None otherwise (the model chooses freely)."""

    def __init__(self, encoding, special: dict[str, int], matcher_for, vocab_size: int, spec: FinalAnswerSpec):
        import torch

        self.encoding, self.parser = encoding, StreamableParser(encoding, Role.ASSISTANT)
        self.matcher_for, self.fmt, self.calls = matcher_for, spec.fmt, dict(spec.calls)
        self.matcher, self.seen, self.broken = None, 0, False  # the held message's matcher, while one is
        self.in_content = False  # as HarmonyStream's: text inside a message cannot change the parser's state
        self.in_call = False  # the held message is a call: it ends at `<|call|>`, not `<|return|>`
        self.return_id, self.call_id = special["<|return|>"], special["<|call|>"]
        self.bitmask = torch.zeros((1, (vocab_size + 31) // 32), dtype=torch.int32)
        for token in spec.header:
            self._read(token)

    def allowed(self, generated: list[int]):
        for token in generated[self.seen:]:
            self._read(token)
        self.seen = len(generated)
        if self.matcher is None or self.broken:
            return None
        from llguidance.torch import fill_next_token_bitmask

        fill_next_token_bitmask(self.matcher, self.bitmask, 0)
        if self.in_call and self._bit(self.return_id):  # the arguments are whole: the call ends here
            self._set(self.return_id, False)
            self._set(self.call_id, True)
        return self.bitmask[0]

    def _bit(self, token: int) -> bool:
        return bool(int(self.bitmask[0, token // 32]) >> (token % 32) & 1)

    def _set(self, token: int, on: bool) -> None:
        word = int(self.bitmask[0, token // 32]) & 0xFFFFFFFF
        word = word | 1 << (token % 32) if on else word & ~(1 << (token % 32))
        self.bitmask[0, token // 32] = word - (1 << 32) if word >= 1 << 31 else word

    def _read(self, token: int) -> None:
        ends_call = self.in_call and token == self.call_id  # not the schema's: its end token is <|return|>
        if self.matcher is not None and not self.broken and not ends_call and not self.matcher.consume_token(token):
            self.broken = True  # cannot happen under the mask; never stall the request over it
        try:
            self.parser.process(token)
        except HarmonyError:
            self.broken = True  # malformed harmony before the answer: left to the parser downstream
            return
        if self.in_content and not self.encoding.is_special_token(token):
            return  # reading parser.state parses JSON that grows with the message: not per text token
        self.in_content = self.parser.state == StreamState.CONTENT
        recipient = self.parser.current_recipient if self.in_content else None
        target = (self.calls.get(recipient) if recipient else
                  self.fmt if self.in_content and self.parser.current_channel == "final" else None)
        if target is None:
            self.matcher, self.in_call = None, False
        elif self.matcher is None:  # a held message begins
            self.matcher, self.in_call = self.matcher_for(target), bool(recipient)

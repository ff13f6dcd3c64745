"""Structured output through llama.cpp in token mode: the whole harmony completion as a GBNF grammar.

In token mode the app renders the prompt and llama.cpp's `llama-server` writes the completion, so the
server must do the constraining, and its grammar covers the whole completion: any number of free
messages (reasoning, preambles, tool calls the agent loop runs), each ending `<|end|><|start|>assistant`,
then the final answer (held to the schema, or free) or a call (a strict function's arguments held to its
parameters; any other recipient free), which ends at `<|call|>`. llama.cpp allows its end-of-generation
tokens (`<|return|>`, `<|call|>`) only where the grammar may end, so the model cannot stop before an
answer or a call. (llama.cpp's lazy form, constrained from a trigger on, was measured no faster here: any
grammar costs the same per token; bench/llamacpp_grammar.py.)

Harmony's structure is written with token references (`<[id]>`, llama.cpp grammars since 2025), never
as text: llama.cpp matches a special token against text rules by its text, so every text rule here
excludes "<|", which is how every special token begins; a special token is then possible only where
the grammar names it.

`SchemaRules` turns the JSON Schema subset structured output uses (OpenAI's strict mode: objects with
properties and required, arrays, enums, consts, anyOf, $ref to $defs, string lengths, integer bounds)
into rules, compact JSON for an answer and harmony's call style for arguments; a keyword it cannot hold
a value to is refused with a sentence, never dropped.
"""

from __future__ import annotations

import json
import math

from core.errors import InputError

IGNORED = {"title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated",
           "readOnly", "writeOnly", "$defs", "definitions", "strict", "discriminator", "x-guidance"}
BOUNDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
TYPE_KEYWORDS = {"string": {"minLength", "maxLength"}, "integer": BOUNDS, "number": set(), "boolean": set(),
                 "null": set(), "array": {"items", "minItems", "maxItems"},
                 "object": {"properties", "required", "additionalProperties"}}
FORMAT = "The response format's schema"  # what the refusals name, unless a function's schema is checked
MAX_REPEAT = 10_000  # llama.cpp expands {m,n} into that many rules: longer bounds are refused

# Text without "<|" (so without a special token), and compact JSON's terminals.
COMMON_RULES = r'''
text ::= ( text-char | "<"+ text-after )* "<"*
text-char ::= [^<]
text-after ::= [^<|]
header-rest ::= ( " " [^<]* )? ( %CONSTRAIN% [^<]* )?
json-value ::= json-object | json-array | json-string | json-number | "true" | "false" | "null"
json-object ::= "{" ( json-string ":" json-value ( "," json-string ":" json-value )* )? "}"
json-array ::= "[" ( json-value ( "," json-value )* )? "]"
json-string ::= "\"" json-chars "\""
json-chars ::= ( json-char | "<"+ json-after )* "<"*
json-char ::= [^"\\<\x00-\x1F] | json-escape
json-after ::= [^"\\<|\x00-\x1F] | json-escape
json-escape ::= "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
json-integer ::= "-"? ( [0-9] | [1-9] [0-9]{1,15} )
json-number ::= json-integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
'''


def completion_grammar(ids: dict[str, int], answer: dict | None, calls: dict[str, dict] | None = None) -> str:
    """The GBNF grammar of a whole harmony completion. `answer`: the JSON Schema its final answer matches
    (None: free text); `calls`: the strict functions' recipients and parameters, whose calls' arguments
    match them (other calls are free). `ids`: harmony's special tokens and their ids. The prompt ends
    with `<|start|>assistant`, so the completion begins with a message's header."""
    calls = calls or {}
    held = {recipient: SchemaRules(calls[recipient], prefix=f"c{n}-", spaced=True, subject=f"{recipient}'s schema")
            for n, recipient in enumerate(sorted(calls))}
    final = SchemaRules(answer) if answer is not None else None
    strict = "".join(f" | strict-call-{n}" for n in range(len(held)))
    harmony = f'''
root ::= free-message* ( final-message | call-message{strict} )
free-message ::= recipient? %CHANNEL% channel-name header-rest %MESSAGE% text %END% %START% "assistant"
final-message ::= %CHANNEL% "final" header-rest %MESSAGE% answer
call-message ::= ( recipient %CHANNEL% channel-name | %CHANNEL% channel-name recipient ) header-rest %MESSAGE% text
channel-name ::= "analysis" | "commentary"
recipient ::= " to=" ( {_other_than(sorted(calls))} )
answer ::= {final.root if final else "text"}
'''
    for n, (recipient, rules) in enumerate(held.items()):
        to = _text(f" to={recipient}")
        harmony += (f"strict-call-{n} ::= ( {to} %CHANNEL% channel-name | %CHANNEL% channel-name {to} ) "
                    f"header-rest %MESSAGE% {rules.root}\n")
    schemas = [*held.values(), *([final] if final else [])]
    return _tokens(harmony + COMMON_RULES + "".join(rules.text() for rules in schemas), ids)


def _tokens(text: str, ids: dict[str, int]) -> str:
    """The grammar with its %NAME% places as token references to harmony's `<|name|>` (`ids`: harmony's
    special tokens and their ids)."""
    for name in ("CHANNEL", "MESSAGE", "END", "START", "CONSTRAIN"):
        text = text.replace(f"%{name}%", f"<[{ids[f'<|{name.lower()}|>']}]>")
    return text.strip() + "\n"


def _other_than(names: list[str]) -> str:
    """A recipient (no "<", no space) that is none of `names`: a trie of them, where each step may leave
    it by a character none of them has there, or end where none of them ends."""
    return "[^< ]+" if not names else _trie_rule(names, "", first=True)


def _trie_rule(names: list[str], prefix: str, first: bool = False) -> str:
    here = [n[len(prefix):] for n in names if n.startswith(prefix)]
    nexts = sorted({rest[0] for rest in here if rest})
    leave = "".join(_class_char(c) for c in nexts)
    parts = [f"[^< {leave}] [^< ]*"]
    parts += [f"{_text(c)} ( {_trie_rule(names, prefix + c)} )" for c in nexts]
    if not first and "" not in here:
        parts.append('""')  # it may end here: no name ends here
    return " | ".join(parts)


def _class_char(c: str) -> str:
    return "\\" + c if c in "\\]^-[" else c


def arguments_grammar(ids: dict[str, int], schema: dict) -> str:
    """The GBNF grammar of a completion that is only a strict call's arguments (the app wrote the call's
    header for the model: a named tool_choice)."""
    rules = SchemaRules(schema, prefix="c0-", spaced=True)
    return _tokens(f"root ::= {rules.root}\n" + COMMON_RULES + rules.text(), ids)


def check_schema(schema: dict | None, subject: str = FORMAT) -> None:
    """Raise InputError (a 400) if the schema uses something the grammar cannot hold the answer to."""
    SchemaRules(schema if schema is not None else {"type": "object"}, subject=subject)


def _refused(what: str) -> InputError:
    return InputError(f"{FORMAT} uses {what}, which llama.cpp's grammar here cannot "
                      "enforce. Leave it out, or run the server in chat mode (--server-api chat).")


def _text(text: str) -> str:
    """Text as a GBNF string literal."""
    return json.dumps(text, ensure_ascii=False)


def _literal(value) -> str:
    """A JSON value as a GBNF string literal (compact JSON, as the answer is written)."""
    return json.dumps(json.dumps(value, separators=(",", ":"), ensure_ascii=False), ensure_ascii=False)


def _repeat(lower, upper, what: str) -> str:
    for bound in (lower, upper):
        if bound is not None and (not isinstance(bound, int) or isinstance(bound, bool) or bound < 0
                                  or bound > MAX_REPEAT):
            raise _refused(f"a {what} bound of {bound!r} (a whole number up to {MAX_REPEAT:,} is enforced)")
    lower = lower or 0
    if upper is not None and upper < lower:
        raise InputError(f"{FORMAT} allows nothing: its {what} is at least {lower} and at "
                         f"most {upper}.")
    return f"{{{lower},{'' if upper is None else upper}}}"


def _integer_bounds(schema: dict) -> tuple[int | None, int | None]:
    """An integer schema's inclusive bounds (None: open)."""
    bounds = {}
    for key in BOUNDS & schema.keys():
        value = schema[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _refused(f"a {key} that is not a number")
        exclusive = key.startswith("exclusive")
        if key.endswith("inimum"):
            bound = math.floor(value) + 1 if exclusive else math.ceil(value)
            bounds["low"] = max(bound, bounds.get("low", bound))
        else:
            bound = math.ceil(value) - 1 if exclusive else math.floor(value)
            bounds["high"] = min(bound, bounds.get("high", bound))
    low, high = bounds.get("low"), bounds.get("high")
    if low is not None and high is not None and low > high:
        raise InputError(f"{FORMAT} allows no integer (from {low} to {high}).")
    return low, high


def integer_range(low: int | None, high: int | None) -> str:
    """GBNF for the integers from `low` to `high` (None: open), written without leading zeros."""
    parts = []
    if low is None or low < 0:  # the negative ones: "-" and their magnitudes
        top = None if low is None else -low
        parts += [f'"-" ( {alt} )' for alt in _magnitudes(max(1, -high) if high is not None and high < 0 else 1, top)]
    if high is None or high >= 0:
        parts += _magnitudes(max(low, 0) if low is not None else 0, high)
    return " | ".join(parts)


def _magnitudes(low: int, high: int | None) -> list[str]:
    """Alternatives for the whole numbers low..high (high None: up to 16 digits), digit count by count."""
    top = 10 ** 16 - 1 if high is None else high
    alternatives = []
    for digits in range(len(str(low)), len(str(top)) + 1):
        start, end = max(low, 10 ** (digits - 1) if digits > 1 else 0), min(top, 10 ** digits - 1)
        if start <= end:
            alternatives += _same_length(str(start), str(end))
    return alternatives


def _same_length(low: str, high: str) -> list[str]:
    """Alternatives for the numbers from `low` to `high`, both of the same number of digits."""
    if low == high:
        return [f'"{low}"']
    if len(low) == 1:
        return [f"[{low}-{high}]"]
    rest = len(low) - 1
    if low[0] == high[0]:
        return [f'"{low[0]}" ( {alt} )' for alt in _same_length(low[1:], high[1:])]
    out, first, last = [], int(low[0]), int(high[0])
    if low[1:] != "0" * rest:
        out += [f'"{low[0]}" ( {alt} )' for alt in _same_length(low[1:], "9" * rest)]
        first += 1
    if high[1:] != "9" * rest:
        out += [f'"{high[0]}" ( {alt} )' for alt in _same_length("0" * rest, high[1:])]
        last -= 1
    if first <= last:
        out.append(f"[{first}-{last}] [0-9]{{{rest}}}")
    return out


class SchemaRules:
    """A JSON Schema as GBNF rules; `root` is the name of the rule for the whole value."""

    def __init__(self, schema: dict, prefix: str = "v", spaced: bool = False, subject: str = FORMAT):
        """`prefix`: its rules' names (several schemas in one grammar); `spaced`: `", "` and `": "` between
        items, as harmony's calls are written (`{"city": "Paris"}`), else compact JSON; `subject`: what the
        schema is, for the refusals ("Function f's schema")."""
        if not isinstance(schema, dict):
            raise InputError(f"{subject} must be a JSON Schema object.")
        self.document, self.rules, self.refs, self.prefix = schema, {}, {}, prefix
        self.comma, self.colon = ('", "', '": "') if spaced else ('","', '":"')
        try:
            self.root = self.rule(schema)
        except InputError as refused:
            if subject == FORMAT:
                raise
            raise InputError(refused.user_message.replace(FORMAT, subject, 1)) from None

    def text(self) -> str:
        return "".join(f"{name} ::= {body}\n" for name, body in self.rules.items())

    def rule(self, schema) -> str:
        """A rule for `schema`'s values; its name."""
        name = f"{self.prefix}{len(self.rules)}"
        self.rules[name] = ""  # reserved first, so that a nested schema gets another name
        self.rules[name] = self.expression(schema)
        return name

    def expression(self, schema) -> str:
        if schema is True or schema == {}:
            return "json-value"
        if not isinstance(schema, dict):
            raise _refused(f"the subschema {json.dumps(schema)[:80]}")
        keys = {k for k in schema if k not in IGNORED and not k.startswith("x-")}
        if "$ref" in keys:
            if keys - {"$ref"}:
                raise _refused(f"keywords beside $ref ({', '.join(sorted(keys - {'$ref'}))})")
            return self.reference(schema["$ref"])
        if "const" in keys or "enum" in keys:
            values = [schema["const"]] if "const" in keys else schema["enum"]
            if not isinstance(values, list) or not values:
                raise _refused("an enum that is not a list of values")
            return " | ".join(_literal(v) for v in values)
        if "anyOf" in keys:
            return self.alternatives(schema, keys)
        if "allOf" in keys:
            parts = schema["allOf"]
            if keys != {"allOf"} or not isinstance(parts, list) or len(parts) != 1:
                raise _refused("allOf with more than one schema")
            return self.rule(parts[0])
        return self.typed(schema, keys)

    def reference(self, ref) -> str:
        if ref == "#":
            return f"{self.prefix}0"  # the whole schema's rule, made first
        if not isinstance(ref, str) or not ref.startswith(("#/$defs/", "#/definitions/")):
            raise _refused(f"the reference {ref!r} (only #/$defs/NAME and #/definitions/NAME are followed)")
        where, _, key = ref[2:].partition("/")
        target = (self.document.get(where) or {}).get(key)
        if target is None:
            raise InputError(f"{FORMAT} refers to {ref}, which it does not define.")
        if ref not in self.refs:  # named before it is written: a schema may refer to itself
            self.refs[ref] = name = f"{self.prefix}{len(self.rules)}"
            self.rules[name] = ""
            self.rules[name] = self.expression(target)
        return self.refs[ref]

    def alternatives(self, schema: dict, keys: set) -> str:
        if keys - {"anyOf"}:
            raise _refused(f"keywords beside anyOf ({', '.join(sorted(keys - {'anyOf'}))})")
        options = schema["anyOf"]
        if not isinstance(options, list) or not options:
            raise _refused("an anyOf that is not a list of schemas")
        return " | ".join(self.rule(option) for option in options)

    def typed(self, schema: dict, keys: set) -> str:
        types = schema.get("type")
        if types is None:
            types = ("object" if keys & TYPE_KEYWORDS["object"] else "array" if keys & TYPE_KEYWORDS["array"]
                     else "string" if keys & TYPE_KEYWORDS["string"] else None)
            if types is None:
                if keys:
                    raise _refused(f"the keyword(s) {', '.join(sorted(keys))}")
                return "json-value"
        types = types if isinstance(types, list) else [types]
        allowed = {"type"}.union(*(TYPE_KEYWORDS.get(t, set()) for t in types if isinstance(t, str)))
        if keys - allowed:
            raise _refused(f"the keyword(s) {', '.join(sorted(keys - allowed))}")
        if not types or any(t not in TYPE_KEYWORDS for t in types):
            raise _refused(f"the type {schema.get('type')!r}")
        return " | ".join(self.of_type(t, schema) for t in types)

    def of_type(self, kind: str, schema: dict) -> str:
        if kind == "string":
            if "minLength" in schema or "maxLength" in schema:
                bounds = _repeat(schema.get("minLength"), schema.get("maxLength"), "string length")
                return f'"\\"" json-char{bounds} "\\""'  # an exact count: no "<" trick within it
            return "json-string"
        if kind == "array":
            return self.array(schema)
        if kind == "object":
            return self.object(schema)
        if kind == "integer" and schema.keys() & BOUNDS:
            return integer_range(*_integer_bounds(schema))
        return {"integer": "json-integer", "number": "json-number", "boolean": '"true" | "false"',
                "null": '"null"'}[kind]

    def array(self, schema: dict) -> str:
        item = self.rule(schema.get("items", True))
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        _repeat(low, high, "minItems/maxItems")
        if high == 0:
            return '"[" "]"'
        more = _repeat(max(low - 1, 0), None if high is None else high - 1, "maxItems")  # after the first item
        rest = "" if high == 1 else f" ( {self.comma} {item} ){more}"
        body = f"{item}{rest}"
        return f'"[" {body} "]"' if low else f'"[" ( {body} )? "]"'

    def object(self, schema: dict) -> str:
        properties = schema.get("properties")
        required = schema.get("required", [])
        if properties is None:
            extra = schema.get("additionalProperties", True)
            if required:
                raise _refused("required without properties")
            value = self.rule(extra) if extra not in (True, False) else "json-value"
            if extra is False:
                return '"{" "}"'
            return f'"{{" ( json-string {self.colon} {value} ( {self.comma} json-string {self.colon} {value} )* )? "}}"'
        if not isinstance(properties, dict) or not isinstance(required, list):
            raise _refused("properties that are not an object, or required that is not a list")
        missing = [r for r in required if r not in properties]
        if missing:
            raise _refused(f"required properties it does not describe ({', '.join(map(str, missing))})")
        # In the schema's order; each optional one may be left out. `after`: the rule for the properties
        # from here on when one was written before (each then starts with a comma); `first`: when none was.
        pairs = [(f'{_literal(key)} {self.colon} {self.rule(value)}', key in required)
                 for key, value in properties.items()]
        after = first = None  # past the last property: nothing
        for pair, needed in reversed(pairs):
            rest = f" {after}" if after else ""
            if needed:
                after, first = self._named(f'{self.comma} {pair}{rest}'), self._named(f"{pair}{rest}")
            else:
                alone = f"{pair}{rest} | {first}" if first else f"( {pair}{rest} )?"
                after, first = self._named(f'( {self.comma} {pair} )?{rest}'), self._named(alone)
        return f'"{{" {first} "}}"' if first else '"{" "}"'

    def _named(self, body: str) -> str:
        name = f"{self.prefix}{len(self.rules)}"
        self.rules[name] = body
        return name

"""The GBNF grammar llama.cpp is sent for structured output in token mode (backend/harmony/gbnf.py).

The grammar is read here by llguidance (translated line by line: the grammar uses a small part of GBNF),
so that what it accepts is checked token by token on harmony's own ids; the live llama.cpp tests
(tests/test_llamacpp_structured.py) check that llama.cpp reads it the same way."""

import json
import re

import pytest

from backend.harmony.gbnf import COMMON_RULES, SchemaRules, check_schema, completion_grammar, integer_range
from backend.harmony.structured import FinalAnswerSpec, ResponseFormat, answer_mismatch, call_schema
from core.errors import InputError

llguidance = pytest.importorskip("llguidance")

GBNF_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|<\[\d+\]>|[A-Za-z0-9-]+|::=|\{\d+(?:,\d*)?\}|[()|*+?]|\s+')


def lark(gbnf: str, root: str = "root") -> str:
    """This grammar's GBNF as llguidance's Lark: rules for rules, regexes for character classes, token
    references as they are (llguidance reads `<[id]>` too), and a string as its characters one by one:
    GBNF is read character by character, llguidance lexes greedily (" to=functions.get_weather" whole
    would never give back " to=" before "functions.get_weather2")."""
    lines = [f"start: {root.replace('-', '_')}"]
    for line in gbnf.strip().splitlines():
        parts, at = [], 0
        for match in GBNF_TOKEN.finditer(line):
            assert match.start() == at, f"not read: {line[at:]!r}"
            at, part = match.end(), match.group()
            parts.append(":" if part == "::=" else "/" + part.replace("/", "\\/") + "/" if part.startswith("[")
                         else " ".join(json.dumps(c) for c in json.loads(part)) or '""' if part.startswith('"')
                         else part.replace("-", "_") if re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", part) else part)
        assert at == len(line), f"not read: {line[at:]!r}"
        lines.append("".join(parts))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def grammars(codec):
    from backend.harmony.structured import _shared_grammars

    return _shared_grammars()


def accepts(grammars, grammar: str, text: str) -> bool:
    matcher = llguidance.LLMatcher(grammars.tokenizer(), llguidance.grammar_from("lark", grammar), log_level=0)
    ids = grammars.encoding.encode(text, allowed_special="all")
    return all(matcher.consume_token(i) for i in ids) and matcher.is_accepting()


def schema_grammar(schema) -> str:
    rules = SchemaRules(schema)
    json_rules = "\n".join(line for line in COMMON_RULES.splitlines() if line.startswith("json"))
    return lark(json_rules + "\n" + rules.text(), root=rules.root)


def test_integer_ranges_are_exactly_their_numbers():
    def regex(low, high):  # the few GBNF forms integer_range writes, as a Python regex
        text = re.sub(r'"(-|\d+)"', r"\1", integer_range(low, high)).replace(" ", "")
        return re.compile(f"(?:{text})")

    for low, high in [(0, 1000), (5, 37), (-12, 7), (None, 5), (3, None), (-100, -3), (None, -7), (0, 0),
                      (99, 101), (123, 98765)]:
        pattern = regex(low, high)
        for n in range(-2_000, 120_000):
            inside = (low is None or n >= low) and (high is None or n <= high)
            assert bool(pattern.fullmatch(str(n))) == inside, (low, high, n)
        assert not pattern.fullmatch("007") and not pattern.fullmatch("-0")


OBJECT = {"type": "object", "additionalProperties": False, "required": ["city", "days"],
          "properties": {"city": {"enum": ["Paris", "Rome"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7},
                         "note": {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]},
                         "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "maxItems": 2}},
          "$defs": {"Tag": {"type": "object", "properties": {"name": {"const": "sun"}}, "required": ["name"]}}}
CASES = [
    (OBJECT, ['{"city":"Paris","days":3}', '{"city":"Rome","days":7,"note":null}',
              '{"city":"Rome","days":1,"note":"ab c","tags":[{"name":"sun"},{"name":"sun"}]}',
              '{"city":"Paris","days":2,"tags":[]}'],
     ['{"city":"Oslo","days":3}', '{"city":"Paris","days":8}', '{"days":3,"city":"Paris"}',
      '{"city":"Paris","days":3,"note":"toolong"}', '{"city":"Paris","days":3,"tags":[{},{},{}]}',
      '{"city":"Paris"}', '{"city": "Paris","days":3}']),
    ({"type": "object"}, ['{}', '{"a":[1,-2.5e3,"x\\n",true,null,{"b":{}}]}'], ['[]', '"x"', '{"a":}']),
    ({"type": ["integer", "null"]}, ["0", "-42", "null"], ["1.5", "01", '"1"']),
    ({"type": "array", "items": {"type": "number"}, "minItems": 1}, ["[1]", "[1.25,-3e2,0]"], ["[]", "[1,]"]),
    ({"type": "string", "minLength": 2, "maxLength": 3}, ['"ab"', '"a\\"c"'], ['"a"', '"abcd"']),
    ({"type": "string"}, ['"a<b"', '"<"', '"\\u00e9<<x"'], ['"a<|b"']),  # "<|" begins every special token
]


@pytest.mark.parametrize("schema,good,bad", CASES)
def test_the_schema_grammar_accepts_what_the_schema_does_and_no_more(grammars, schema, good, bad):
    grammar = schema_grammar(schema)
    for text in good:
        assert accepts(grammars, grammar, text), text
        if isinstance(schema, dict) and schema.get("type") == "object":
            assert answer_mismatch(ResponseFormat(schema=schema), text) is None, text
    for text in bad:
        assert not accepts(grammars, grammar, text), text


@pytest.fixture(scope="module")
def completion(codec):
    ids = {name: codec.special_id(name) for name in ("<|channel|>", "<|message|>", "<|end|>", "<|start|>",
                                                     "<|constrain|>")}
    return lark(completion_grammar(ids, OBJECT))


@pytest.mark.parametrize("text,accepted", [
    ('<|channel|>analysis<|message|>Think, <b>.<|end|><|start|>assistant<|channel|>final<|message|>'
     '{"city":"Rome","days":2}', True),
    ('<|channel|>final <|constrain|>json<|message|>{"city":"Rome","days":2}', True),
    ('<|channel|>commentary<|message|>Checking.<|end|><|start|>assistant<|channel|>final<|message|>'
     '{"city":"Paris","days":1}', True),
    ('<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Rome"}', True),
    (' to=python<|channel|>analysis code<|message|>print(1)', True),
    ('<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Rome, 2 days', False),
    ('<|channel|>analysis<|message|>Think.', False),  # no answer: cannot end there
    ('<|channel|>analysis<|message|>Think <|channel|>final<|message|>free text<|end|>', False),
    ('<|channel|>finale<|message|>{"city":"Rome","days":2}', False),
    ('<|channel|>final<|message|>{"city":"Rome","days":2}<|end|><|start|>assistant', False),
])
def test_the_completion_grammar_frees_the_reasoning_and_holds_the_answer(grammars, completion, text, accepted):
    assert accepts(grammars, completion, text) == accepted


def test_harmony_structure_is_token_references_never_text(codec):
    grammar = FinalAnswerSpec(ResponseFormat(schema=OBJECT)).gbnf()
    literals = re.findall(r'"(?:[^"\\]|\\.)*"', grammar)
    assert literals and not any("<|" in literal for literal in literals)
    assert f"<[{codec.special_id('<|message|>')}]>" in grammar
    assert FinalAnswerSpec(ResponseFormat(schema=OBJECT), header=(1, 2)).gbnf() is None  # a call: no answer


@pytest.mark.parametrize("schema,named", [
    ({"type": "string", "format": "date-time"}, "format"),
    ({"type": "string", "pattern": "^a+$"}, "pattern"),
    ({"oneOf": [{"type": "string"}, {"type": "null"}]}, "oneOf"),
    ({"type": "number", "minimum": 0}, "minimum"),
    ({"type": "object", "minProperties": 1}, "minProperties"),
    ({"$ref": "https://example.com/schema.json"}, "https://example.com/schema.json"),
    ({"type": "array", "maxItems": 10**9}, "maxItems"),
    ({"type": "money"}, "money"),
])
def test_what_the_grammar_cannot_hold_is_refused_by_name(schema, named):
    with pytest.raises(InputError) as refused:
        check_schema(schema)
    assert named in refused.value.user_message and "chat mode" in refused.value.user_message


def test_a_missing_definition_or_an_empty_range_is_a_sentence():
    with pytest.raises(InputError, match="does not define"):
        check_schema({"$ref": "#/$defs/Nope"})
    with pytest.raises(InputError, match="allows no integer"):
        check_schema({"type": "integer", "minimum": 5, "maximum": 2})
    with pytest.raises(InputError, match="allows nothing"):
        check_schema({"type": "array", "minItems": 3, "maxItems": 1})
    check_schema(None)  # any JSON object


WEATHER = {"type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]}}, "required": ["city"]}


@pytest.fixture(scope="module")
def with_calls(codec):
    ids = {name: codec.special_id(name) for name in ("<|channel|>", "<|message|>", "<|end|>", "<|start|>",
                                                     "<|constrain|>")}
    return lark(completion_grammar(ids, None, {"functions.get_weather": WEATHER, "functions.get_time": {"type": "object"}}))


@pytest.mark.parametrize("text,accepted", [
    ('<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Rome"}', True),
    (' to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris"}', True),
    ('<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Berlin"}', False),
    ('<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Rome"}', False),
    ('<|channel|>commentary to=functions.get_time <|constrain|>json<|message|>{"zone": "UTC"}', True),
    ('<|channel|>commentary to=functions.get_weather2<|message|>anything', True),  # another name: free
    ('<|channel|>commentary to=functions.get<|message|>anything', True),
    (' to=python<|channel|>analysis<|message|>print(1)', True),
    ('<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Free text.', True),
])
def test_strict_calls_are_held_and_every_other_recipient_is_free(grammars, with_calls, text, accepted):
    assert accepts(grammars, with_calls, text) == accepted


def test_a_named_strict_call_is_only_its_arguments(grammars, codec):
    header = codec.call_header("get_weather")
    spec = FinalAnswerSpec(None, tuple(header), calls=(("functions.get_weather", call_schema(WEATHER)),))
    grammar = lark(spec.gbnf())
    assert accepts(grammars, grammar, '{"city": "Rome"}') and not accepts(grammars, grammar, '{"city": "Oslo"}')
    assert FinalAnswerSpec(None, tuple(codec.call_header("other")), calls=spec.calls).gbnf() is None
    assert FinalAnswerSpec(None).gbnf() is None  # nothing to hold


def test_a_strict_functions_schema_is_refused_by_its_name():
    with pytest.raises(InputError, match="^functions.f's schema uses the keyword\\(s\\) pattern"):
        check_schema({"type": "string", "pattern": "a+"}, subject="functions.f's schema")

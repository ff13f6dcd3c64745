"""backend/harmony/structured.py: a response format is told in harmony's developer message, checked before
it is used, and enforced only while the final answer is written: the reasoning and a tool call are free,
the answer's text is what llguidance allows for the schema, and once the JSON is whole only <|return|>."""

import pytest

from backend.harmony.codec import PromptSettings
from backend.harmony.structured import (
    FinalAnswerSpec,
    Grammars,
    ResponseFormat,
    answer_mismatch,
    call_schema,
    chat_format,
    formats_section,
    response_format,
)
from core.errors import InputError

pytest.importorskip("llguidance")

SUM = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"],
       "additionalProperties": False}


@pytest.fixture(scope="module")
def grammars(codec):
    return Grammars(codec.encoding)


def ids(codec, text: str) -> list[int]:
    return list(codec.encoding.encode(text, allowed_special="all"))


def allowed_ids(mask, codec) -> set[int]:
    return {i for i in range(mask.numel() * 32) if (int(mask[i // 32]) >> (i % 32)) & 1}


def test_the_format_is_told_in_the_developer_message_as_harmony_says(codec):
    fmt = response_format("Sum", SUM, "The sum, as a number")
    text = codec.decode(codec.render([], PromptSettings(instructions="Be brief.", response_format=fmt)))
    developer = text.split("<|start|>developer<|message|>")[1].split("<|end|>")[0]
    assert developer.startswith("# Instructions\n\nBe brief.\n\n# Response Formats\n\n## Sum\n\n// The sum, as a number\n")
    assert formats_section(ResponseFormat()) == '# Response Formats\n\n## response\n\n{"type":"object"}'


def test_a_schema_that_cannot_be_enforced_is_refused_with_why():
    with pytest.raises(InputError, match="cannot be enforced: .*objectx"):
        response_format("bad", {"type": "objectx"})
    with pytest.raises(InputError, match="must be a JSON Schema object"):
        response_format("bad", ["not", "a", "schema"])


def test_only_the_final_answer_is_held_to_the_schema(codec, grammars):
    constraint = grammars.constraint(FinalAnswerSpec(response_format("Sum", SUM)))
    generated = ids(codec, "<|channel|>analysis<|message|>Add them.<|end|>")
    assert constraint.allowed(generated) is None  # the reasoning is free
    generated += ids(codec, "<|start|>assistant<|channel|>final<|message|>")
    first = allowed_ids(constraint.allowed(generated), codec)
    assert {codec.decode([t]) for t in first} == {'{"'}  # compact JSON: the object opens, nothing else
    generated += ids(codec, '{"answer":42}')
    assert allowed_ids(constraint.allowed(generated), codec) == {codec.return_id}  # whole: only <|return|>


def test_a_call_is_free_and_the_header_the_app_wrote_is_read_first(codec, grammars):
    header = codec.call_header("get_weather")
    live = grammars.constraint(FinalAnswerSpec(response_format("Sum", SUM), tuple(header)))
    assert live.allowed(ids(codec, '{"city": "Par')) is None  # the call's arguments, not the answer


WEATHER = {"type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]}}, "required": ["city"],
           "additionalProperties": False}


def test_a_strict_call_is_held_to_its_parameters_and_ends_at_call(codec, grammars):
    """OpenAI's `strict: true` on a function: its arguments match its parameters, written the way harmony's
    calls are; a call to a function that is not strict, and the final answer without a format, stay free."""
    spec = FinalAnswerSpec(None, calls=(("functions.get_weather", call_schema(WEATHER)),))
    constraint = grammars.constraint(spec)
    generated = ids(codec, "<|channel|>commentary to=functions.other <|constrain|>json<|message|>")
    assert constraint.allowed(generated) is None
    constraint = grammars.constraint(spec)
    generated = ids(codec, "<|channel|>analysis<|message|>Ask.<|end|><|start|>assistant<|channel|>commentary "
                           "to=functions.get_weather <|constrain|>json<|message|>")
    assert {codec.decode([t]) for t in allowed_ids(constraint.allowed(generated), codec)} == {'{"'}
    generated += ids(codec, '{"city": "')
    cities = {codec.decode([t]) for t in allowed_ids(constraint.allowed(generated), codec)}
    assert {"Paris", "Rome"} <= cities and not any(c.startswith(("Ber", "Lon")) for c in cities)
    generated += ids(codec, 'Rome"}')
    assert allowed_ids(constraint.allowed(generated), codec) == {codec.call_id}  # whole: only <|call|>
    assert grammars.constraint(spec).allowed(ids(codec, "<|channel|>final<|message|>")) is None


def test_a_named_strict_call_is_held_from_the_header_the_app_wrote(codec, grammars):
    header = codec.call_header("get_weather")
    spec = FinalAnswerSpec(None, tuple(header), calls=(("functions.get_weather", call_schema(WEATHER)),))
    assert {codec.decode([t]) for t in allowed_ids(grammars.constraint(spec).allowed([]), codec)} == {'{"'}


def test_the_spec_travels_to_a_model_process(codec):
    import pickle

    spec = FinalAnswerSpec(response_format("Sum", SUM), (1, 2), (("functions.get_weather", call_schema(WEATHER)),))
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert spec.start().allowed([]) is None  # built from this process's own encoding


def test_an_answer_is_checked_against_its_format_with_what_is_wrong(codec):
    """A server that applies the format itself is trusted no further than this check (free whitespace
    allowed, as servers write JSON)."""
    fmt = response_format("Sum", SUM)
    assert answer_mismatch(fmt, '{"answer":4}') is None
    assert answer_mismatch(fmt, '{ "answer": 4 }\n') is None
    assert answer_mismatch(fmt, '{"answer":"four"}') == "it stops matching the schema at '\":\"four\"}'"  # a token
    assert answer_mismatch(fmt, "2 + 2 = 4.") == "it stops matching the schema at '2 + 2 = 4.'"
    assert answer_mismatch(fmt, '{"answer":4') == answer_mismatch(fmt, "") == "its JSON is incomplete"
    assert answer_mismatch(response_format("any", None), '{"x":[1]}') is None
    assert answer_mismatch(response_format("any", None), "[1]") is not None


def test_a_format_as_a_server_s_chat_response_format():
    assert chat_format(response_format("Sum", SUM, "The sum")) == {"type": "json_schema", "json_schema": {
        "name": "Sum", "schema": SUM, "strict": True, "description": "The sum"}}
    assert chat_format(response_format("any", None)) == {"type": "json_object"}

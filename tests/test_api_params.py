"""Every request parameter of both APIs is honoured or refused by name, never silently ignored; the
table covers what the official client can send, and README lists it."""

import typing
from pathlib import Path

import pytest

from backend.api.messages import parse_body
from backend.api.params import CHAT_TABLE, RESPONSES_TABLE
from backend.api.responses_input import parse_responses
from core.errors import InputError

openai = pytest.importorskip("openai")

# A value that asks for something, for every refused parameter (a new refused one must be added here).
ASKING = {"service_tier": "flex", "top_logprobs": 3, "moderation": {"model": "x"}, "seed": 7,
          "frequency_penalty": 0.5, "presence_penalty": 0.5,
          "logit_bias": {"1": 5}, "logprobs": True, "modalities": ["text", "audio"], "audio": {"voice": "x"},
          "prediction": {"type": "content", "content": "x"}, "web_search_options": {}, "verbosity": "low",
          "functions": [{"name": "f"}], "function_call": "auto", "background": True, "background_options": {},
          "conversation": "conv_1", "prompt": {"id": "p"}, "context_management": [{"type": "compaction"}],
          "image": {"x": 1}, "access_programs": ["x"]}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "m", "input": "hi"}


def chat(body):
    return parse_body({**CHAT, **body}, limit=1000, max_new_tokens=100, default_effort="medium", store=False)


def responses(body):
    return parse_responses({**RESPONSES, **body}, limit=1000, max_new_tokens=100, default_effort="medium")


def client_params(cls) -> set[str]:
    return set(typing.get_type_hints(cls)) | {"stream"}


def test_the_tables_cover_every_parameter_the_official_client_sends():
    from openai.types.chat.completion_create_params import CompletionCreateParamsBase
    from openai.types.responses.response_create_params import ResponseCreateParamsBase

    assert client_params(CompletionCreateParamsBase) - set(CHAT_TABLE) == set()
    assert client_params(ResponseCreateParamsBase) - set(RESPONSES_TABLE) == set()


@pytest.mark.parametrize("table,parse", [(CHAT_TABLE, chat), (RESPONSES_TABLE, responses)])
def test_each_refused_parameter_is_refused_by_name_and_accepted_when_it_asks_nothing(table, parse):
    refused = [p for p in table.values() if p.refused]
    assert refused and all(p.name in ASKING for p in refused)
    for param in refused:
        with pytest.raises(InputError, match=f"`{param.name}`"):
            parse({param.name: ASKING[param.name]})
        parse({param.name: None})  # null asks for nothing


def test_unknown_parameters_and_wrong_types_get_sentences():
    with pytest.raises(InputError, match="Unknown parameter.*temprature"):
        chat({"temprature": 0.5})
    with pytest.raises(InputError, match="`stream` must be true or false"):
        chat({"stream": "false"})
    for bad in (True, 0, -1, 131_073, 1.5):
        with pytest.raises(InputError, match="`max_tokens` must be a whole number from 1 to 131,072"):
            chat({"max_tokens": bad})
    with pytest.raises(InputError, match="`max_output_tokens`"):
        responses({"max_output_tokens": 0})
    assert chat({"max_tokens": 131_072}).options.max_new_tokens == 131_072  # gpt-oss's evals ask this
    assert chat({"n": None}).options and chat({"n": 1})
    with pytest.raises(InputError, match="`n` must be 1"):
        chat({"n": 2})
    with pytest.raises(InputError, match="reasoning"):
        chat({"reasoning": "high"})
    assert chat({"reasoning": {"effort": "high"}}).options.effort == "high"
    assert chat({"chat_template_kwargs": {"reasoning_effort": "low"}}).options.effort == "low"  # vLLM's way
    with pytest.raises(InputError, match="chat_template_kwargs"):
        chat({"chat_template_kwargs": {"enable_thinking": False}})
    with pytest.raises(InputError, match="`stop`"):
        chat({"stop": ["a", "b", "c", "d", "e"]})


def test_honoured_parameters_reach_the_request():
    call = chat({"stop": "\n\n", "top_p": 0.9, "metadata": {"team": "ml"}, "safety_identifier": "u-1",
                 "prompt_cache_key": "k", "parallel_tool_calls": False, "stream_options": {"include_usage": True},
                 "stream": True})
    assert call.stop == ("\n\n",) and call.options.top_p == 0.9 and call.metadata == {"team": "ml"}
    assert call.end_user == "u-1" and call.include_usage and call.stream
    with pytest.raises(InputError, match="include_obfuscation"):
        chat({"stream_options": {"include_obfuscation": True}})
    r = responses({"include": ["reasoning.encrypted_content"], "reasoning": {"effort": "low", "summary": "auto"},
                   "text": {"format": {"type": "text"}}, "truncation": "disabled"})
    assert r.include_reasoning_blob and r.summary == "auto" and r.api.options.effort == "low"
    with pytest.raises(InputError, match="include"):
        responses({"include": ["message.output_text.logprobs"]})
    with pytest.raises(InputError, match="truncation"):
        responses({"truncation": "auto"})


def test_readme_lists_every_parameter_and_what_happens_to_it():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Request parameters"):]
    section = section[:section.index("\n## ")]
    for name in set(CHAT_TABLE) | set(RESPONSES_TABLE):
        assert f"`{name}`" in section, name


def test_structured_output_is_read_from_either_apis_place_and_a_bad_one_is_named():
    pytest.importorskip("llguidance")
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    fmt = chat({"response_format": {"type": "json_schema", "json_schema": {"name": "Ok", "schema": schema,
                                                                             "strict": True}}}).options.response_format
    assert (fmt.name, fmt.schema) == ("Ok", schema)
    fmt = responses({"text": {"format": {"type": "json_schema", "name": "Ok", "schema": schema}}}).api.options
    assert fmt.response_format.schema == schema
    assert chat({"response_format": {"type": "json_object"}}).options.response_format.schema is None  # any object
    assert chat({"response_format": {"type": "text"}}).options.response_format is None
    with pytest.raises(InputError, match="`response_format` takes a type of text, json_object or json_schema"):
        chat({"response_format": {"type": "xml"}})
    with pytest.raises(InputError, match="cannot be enforced"):
        responses({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": 5}}}})

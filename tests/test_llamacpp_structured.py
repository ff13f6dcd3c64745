"""Structured output through llama.cpp in token mode, against the real `llama-server` on the demo model
(tests/support/llama_server.py): the app renders the harmony prompt, sends the ids with a grammar of the
whole completion (backend/harmony/gbnf.py), and llama.cpp holds the final answer to the schema while the
reasoning stays free. The demo model knows nothing of JSON; what it writes is the grammar's doing."""

from datetime import datetime
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from tests.support.api import api_client, parsed_weather

openai = pytest.importorskip("openai")


class Weather(BaseModel):
    city: Literal["Paris", "Rome"]
    sunny: bool


class Sum(BaseModel):
    answer: int = Field(ge=0, le=1000)


class Item(BaseModel):
    fruit: Literal["apple", "pear"]
    count: int = Field(ge=1, le=9)


class Order(BaseModel):  # $defs and $ref, an array with a bound, a nullable string with a length
    items: list[Item] = Field(max_length=3)
    note: str | None = Field(max_length=12)


class Meeting(BaseModel):
    at: datetime  # "format": "date-time", which the grammar cannot hold an answer to


@pytest.fixture(scope="module")
def llama_app(tmp_path_factory, codec):
    from backend.demo.model import ensure_built
    from core.config import Config
    from testkit.net import free_port
    from tests.support.apps import running_app
    from tests.support.llama_server import llama_server

    folder = ensure_built(tmp_path_factory.mktemp("demo") / "demo-model", codec, lambda stage, fraction: None)
    with llama_server(folder, tmp_path_factory.mktemp("llama")) as url:
        config = Config(data_dir=str(tmp_path_factory.mktemp("app")), port=free_port(), engine="openai",
                        base_url=url + "/v1", max_new_tokens=400)
        with running_app(config) as parts:
            client = api_client(f"http://127.0.0.1:{config.port}")
            yield parts, client, client.models.list().data[0].id


def test_the_probe_finds_token_mode_and_its_grammars(llama_app):
    parts, _, _ = llama_app
    description = parts.host.status().description
    assert "llama.cpp /completion, token ids" in description.engine
    assert description.server_grammars and not description.server_formats


def test_chat_completions_parse_gets_the_object_and_the_reasoning_apart(llama_app):
    _, client, model = llama_app
    parsed_weather(client, model, Weather)


def test_responses_parse_with_bounds_refs_and_arrays(llama_app):
    _, client, model = llama_app
    r = client.responses.parse(model=model, input="What is 38 + 46?", text_format=Sum, max_output_tokens=400)
    assert isinstance(r.output_parsed, Sum) and 0 <= r.output_parsed.answer <= 1000
    r = client.responses.parse(model=model, input="Order some fruit.", text_format=Order, max_output_tokens=400)
    assert isinstance(r.output_parsed, Order) and len(r.output_parsed.items) <= 3
    assert [item.type for item in r.output] == ["reasoning", "message"]


def test_plain_text_is_unchanged_without_a_format(llama_app):
    _, client, model = llama_app
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "What is 2 + 3?"}],
                                       max_tokens=400)
    assert "python tool" in r.choices[0].message.content  # the demo model's own answer, not JSON


def test_what_the_grammar_cannot_hold_is_refused_with_a_sentence(llama_app):
    _, client, model = llama_app
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.parse(model=model, messages=[{"role": "user", "content": "When do we meet?"}],
                                      response_format=Meeting, max_tokens=100)
    assert "format" in str(refused.value) and "chat mode" in str(refused.value)


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city now.", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}


WEATHER_FORMAT = {"type": "json_schema", "json_schema": {"name": "Weather", "schema": Weather.model_json_schema()}}


def test_a_function_round_trip_under_the_grammar(llama_app):
    """The grammar leaves calls free: the model calls the client's function, and once the result is in,
    its final answer is held to the format."""
    _, client, model = llama_app
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL],
                                           response_format=WEATHER_FORMAT, max_tokens=400)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny", "celsius": 21}'}]
    second = client.chat.completions.parse(model=model, messages=messages, tools=[WEATHER_TOOL],
                                           response_format=Weather, max_tokens=400)
    assert isinstance(second.choices[0].message.parsed, Weather)
    assert second.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("tool_choice", ["auto", {"type": "function", "function": {"name": "get_weather"}}])
def test_a_strict_functions_arguments_are_held_by_the_grammar(llama_app, tool_choice):
    """`strict: true`: the grammar holds the call's arguments to the parameters (here only Rome, for a
    question about Paris), whether the model writes the header or the app does (a named tool_choice)."""
    _, client, model = llama_app
    only_rome = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "parameters": {
        **WEATHER_TOOL["function"]["parameters"], "properties": {"city": {"type": "string", "enum": ["Rome"]}}}}}
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "What is the weather in Paris?"}],
                                       tools=[only_rome], tool_choice=tool_choice, max_tokens=400)
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.arguments == '{"city": "Rome"}'


def test_a_strict_schema_the_grammar_cannot_hold_is_refused_by_name(llama_app):
    _, client, model = llama_app
    dated = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "parameters": {
        "type": "object", "properties": {"day": {"type": "string", "format": "date"}}, "required": ["day"],
        "additionalProperties": False}}}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Weather tomorrow?"}],
                                       tools=[dated], max_tokens=100)
    assert "functions.get_weather's schema uses the keyword(s) format" in str(refused.value)

"""Structured output through /v1, with the clients teams use, on the demo model (real weights, not forced):
the official client's `parse` on both APIs, an openai-agents agent with an `output_type`, and LangChain's
`with_structured_output` each get an object of their class. The small model knows nothing of JSON: what
it writes is held to the schema by constrained decoding alone, which is the point (the numbers it puts in
are its own guesses). An engine that cannot constrain refuses with a sentence."""

import asyncio
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from tests.support.api import api_client, parsed_weather

pytest.importorskip("llguidance")
openai = pytest.importorskip("openai")


class Weather(BaseModel):
    city: Literal["Paris", "Rome"]
    sunny: bool


class Sum(BaseModel):
    answer: int = Field(ge=0, le=1000)  # bounded: a model that does not know JSON cannot write digits forever


@pytest.fixture(scope="module")
def demo_api(tmp_path_factory):
    from core.config import Config
    from testkit.net import free_port
    from tests.support.apps import running_app

    config = Config(data_dir=str(tmp_path_factory.mktemp("demo")), port=free_port(), demo=True,
                    model_in_app_process=True)
    with running_app(config):
        base = f"http://127.0.0.1:{config.port}"
        client = api_client(base)
        yield base, client, client.models.list().data[0].id


def test_chat_completions_parse_returns_the_pydantic_object_with_the_reasoning_apart(demo_api):
    _, client, model = demo_api
    parsed_weather(client, model, Weather)


def test_responses_parse_and_the_format_is_echoed(demo_api):
    _, client, model = demo_api
    r = client.responses.parse(model=model, input="What is 38 + 46?", text_format=Sum, max_output_tokens=400)
    assert isinstance(r.output_parsed, Sum)
    assert r.text.format.type == "json_schema" and r.text.format.name == "Sum"
    assert [item.type for item in r.output] == ["reasoning", "message"]


def test_an_openai_agent_with_an_output_type(demo_api):
    agents = pytest.importorskip("agents")
    from openai import AsyncOpenAI

    base, _, model = demo_api
    agents.set_tracing_disabled(True)
    llm = agents.OpenAIResponsesModel(model, AsyncOpenAI(base_url=base + "/v1", api_key="EMPTY", max_retries=0))
    agent = agents.Agent(name="weather", instructions="Say the weather.", output_type=Weather, model=llm,
                         model_settings=agents.ModelSettings(max_tokens=400))
    result = asyncio.run(agents.Runner.run(agent, "Is it sunny in Rome?"))
    assert isinstance(result.final_output, Weather)


def test_langchain_with_structured_output(demo_api):
    langchain_openai = pytest.importorskip("langchain_openai")

    base, _, model = demo_api
    llm = langchain_openai.ChatOpenAI(model=model, base_url=base + "/v1", api_key="EMPTY", max_retries=0,
                                      max_tokens=400)
    assert isinstance(llm.with_structured_output(Sum).invoke("What is 17 + 25?"), Sum)


def test_a_bad_schema_is_a_400_that_names_it(demo_api):
    base, _, model = demo_api
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "objectx"}}}}
    r = httpx.post(base + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 400 and "cannot be enforced" in r.json()["error"]["message"]


def test_an_engine_that_cannot_constrain_refuses_with_a_sentence(tmp_path, codec):
    from backend.services.pipeline import NO_CONSTRAINTS
    from tests.support.apps import synthetic_app

    config, app = synthetic_app(tmp_path, codec.encoding, rate=400.0)  # like a server engine: no constraints
    with app:
        client = api_client(f"http://127.0.0.1:{config.port}")
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model=client.models.list().data[0].id, response_format={"type": "json_object"},
                                           messages=[{"role": "user", "content": "hi"}])
    assert NO_CONSTRAINTS[:60] in str(refused.value)


def test_a_chat_mode_server_s_own_structured_output_is_parsed_or_refused_as_wrong(tmp_path, codec, server):
    """With --engine openai in chat mode the server applies the format itself (vLLM's stream replayed over
    HTTP here): `parse` gets the object from a matching answer, and an answer that is not the JSON asked
    for is an error that says so, not plain text for the client to choke on."""
    from backend.engines.openai_engine import OpenAIEngine
    from backend.harmony.bridge import DeltaWriter
    from core.config import Config
    from testkit.net import free_port
    from tests.support.apps import running_app
    from tests.support.replay_server import Reply, chat_stream, recorded

    server.route("/v1/chat/completions", Reply(chat_stream("Add them.", '{"answer": 42}')),
                 Reply(recorded("vllm_chat.sse")))
    config = Config(data_dir=str(tmp_path), port=free_port())
    build = lambda progress: OpenAIEngine(server.url + "/v1", api="chat",  # noqa: E731
                                          delta_writer=lambda: DeltaWriter(codec.encoding)).connect()
    with running_app(config, build_engine=build):
        client = api_client(f"http://127.0.0.1:{config.port}")
        model = client.models.list().data[0].id
        ask = dict(model=model, response_format=Sum, messages=[{"role": "user", "content": "What is 17 + 25?"}])
        assert client.chat.completions.parse(**ask).choices[0].message.parsed == Sum(answer=42)
        sent = [body for path, body in server.requests if path == "/v1/chat/completions"][-1]
        assert sent["response_format"]["json_schema"]["schema"]["properties"]["answer"]["type"] == "integer"
        with pytest.raises(openai.APIStatusError) as wrong:
            client.chat.completions.parse(**ask)
    assert "does not match the response format" in str(wrong.value)
    assert "the inference server did not keep to it" in str(wrong.value)


def weather_tool(cities: list[str], strict: bool) -> dict:
    return {"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city now.", "strict": strict, "parameters": {
            "type": "object", "properties": {"city": {"type": "string", "enum": cities}}, "required": ["city"],
            "additionalProperties": False}}}


def test_a_strict_functions_arguments_are_held_to_its_parameters(demo_api):
    """`strict: true`: the call's arguments are decoded under the function's schema (as the final answer is
    under a format). The demo model asked about Paris writes Paris; offered only Rome, strictly, it must
    write Rome, in harmony's own call style."""
    _, client, model = demo_api
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    free = client.chat.completions.create(model=model, messages=ask, tools=[weather_tool(["Rome"], False)],
                                          tool_choice="required", max_tokens=200)
    assert "Paris" in free.choices[0].message.tool_calls[0].function.arguments  # not strict: not held
    held = client.chat.completions.create(model=model, messages=ask, tools=[weather_tool(["Rome"], True)],
                                          tool_choice="required", max_tokens=200)
    call = held.choices[0].message.tool_calls[0]
    assert held.choices[0].finish_reason == "tool_calls" and call.function.arguments == '{"city": "Rome"}'

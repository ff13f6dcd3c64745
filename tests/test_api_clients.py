"""The programs teams use, as they are, against the app's /v1 (the forced tiny model behind the same
worker): openai-agents with its default Responses model, langchain-openai with the Responses API and
reasoning, litellm's responses and completion."""

import asyncio
import json

import pytest

from tests.support.api import AFTER, CALL, api_app


def make_app(launched, tmp_path, text=None, then=()):
    parts, _, base = api_app(launched, tmp_path, text, then)
    return parts, base + "/v1"

def test_an_openai_agent_with_a_function_tool_completes_its_loop(launched, tmp_path):
    agents = pytest.importorskip("agents")
    from openai import AsyncOpenAI

    parts, base = make_app(launched, tmp_path, CALL, then=(AFTER,))
    agents.set_tracing_disabled(True)  # its traces would go to OpenAI's servers
    asked = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city now."""
        asked.append(city)
        return "sunny"

    model = agents.OpenAIResponsesModel("tiny-test", AsyncOpenAI(base_url=base, api_key="EMPTY", max_retries=0))
    agent = agents.Agent(name="weather", instructions="Answer briefly.", tools=[get_weather], model=model)
    result = asyncio.run(agents.Runner.run(agent, "Weather in Paris?"))
    assert asked == ["Paris"] and result.final_output == "Sunny in Paris."
    kinds = [item.type for item in result.new_items]
    assert kinds[:2] == ["reasoning_item", "tool_call_item"] and "tool_call_output_item" in kinds


def test_langchain_with_the_responses_api_gets_the_reasoning(launched, tmp_path):
    langchain_openai = pytest.importorskip("langchain_openai")

    parts, base = make_app(launched, tmp_path)
    llm = langchain_openai.ChatOpenAI(model="tiny-test", base_url=base, api_key="EMPTY", use_responses_api=True,
                                      reasoning={"effort": "high"}, max_retries=0)
    message = llm.invoke("hi")
    assert message.text == "Hello! <b>How</b> can I help?"
    # The reasoning item as the server sent it: raw reasoning is `content` reasoning_text (a summary would
    # be `summary`, which LangChain's standard blocks read; under --reasoning-display summary it is that).
    [reasoning] = [b for b in message.content if b["type"] == "reasoning"]
    assert reasoning["summary"] == [] and "Let me think" in reasoning["content"][0]["text"]
    entries = [e for e in parts.oversight.audit.store.entries() if e.action == "api_request"]
    assert [e.effort for e in entries] == ["high"]


def test_litellm_responses_and_completion_with_reasoning(launched, tmp_path, monkeypatch):
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: no price list from GitHub
    litellm = pytest.importorskip("litellm")

    _, base = make_app(launched, tmp_path)
    r = litellm.responses(model="openai/tiny-test", api_base=base, api_key="EMPTY", input="hi",
                          reasoning={"effort": "low"})
    texts = [c.text for item in r.output if item.type == "message" for c in item.content]
    assert texts == ["Hello! <b>How</b> can I help?"]
    c = litellm.completion(model="openai/tiny-test", api_base=base, api_key="EMPTY", reasoning_effort="low",
                           allowed_openai_params=["reasoning_effort"],  # litellm checks it against a model list
                           messages=[{"role": "user", "content": "hi"}])
    message = c.choices[0].message
    assert message.content == "Hello! <b>How</b> can I help?" and "Let me think" in message.reasoning_content
    assert json.loads(c.model_dump_json())["usage"]["completion_tokens"] > 0

"""An API answer read once for both APIs, through the launched app and the official client: stop
strings, tool_choice as harmony's own call header, calls to what was not offered, OpenAI's error shape."""

import json

import httpx
import pytest

from backend.api.run import StopText
from tests.support.api import CALL, api_app, api_client

openai = pytest.importorskip("openai")

WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


def make_app(launched, tmp_path, text=None):
    parts, _, base = api_app(launched, tmp_path, text)
    return parts, base, api_client(base)


def prompts_of(parts) -> list:
    """What the worker is given from now on (its submit, watched)."""
    seen, worker = [], parts.host.worker()
    original = worker.submit
    worker.submit = lambda request: seen.append(job := original(request)) or job
    return seen


def test_stop_text_holds_back_what_may_start_a_stop_string():
    stop = StopText(("<b>", "END"))
    assert stop.feed("Hello! <") == "Hello! " and not stop.hit  # "<" may start "<b>"
    assert stop.feed("i>x E") == "<i>x " and stop.feed("N") == ""
    assert stop.feed("Dless") == "" and stop.hit
    assert StopText(()).feed("anything") == "anything"
    tail = StopText(("xyz",))
    assert tail.feed("abx") == "ab" and tail.flush() == "x"


def test_stop_strings_end_the_answer_streamed_or_whole(launched, tmp_path):
    _, _, c = make_app(launched, tmp_path)
    ask = dict(model="tiny-test", messages=[{"role": "user", "content": "hi"}], stop=["<b>"])
    whole = c.chat.completions.create(**ask)
    assert whole.choices[0].message.content == "Hello! " and whole.choices[0].finish_reason == "stop"
    chunks = list(c.chat.completions.create(**ask, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "Hello! "
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"


def test_a_named_function_is_called_through_harmonys_own_header(launched, tmp_path):
    parts, _, c = make_app(launched, tmp_path, '{"city": "Oslo"}<|call|>')
    seen = prompts_of(parts)
    r = c.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "Oslo?"}], tools=WEATHER,
                                  tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    header = parts.host.codec.call_header("get_weather")
    assert seen[0].prompt[-len(header):] == header  # the model wrote only the arguments
    assert parts.host.codec.decode(header) == " to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>"


def test_required_makes_the_model_name_one_of_the_functions(launched, tmp_path):
    parts, _, c = make_app(launched, tmp_path, '.get_weather<|channel|>commentary <|constrain|>json<|message|>'
                                               '{"city": "Rome"}<|call|>')
    seen = prompts_of(parts)
    r = c.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "Rome?"}], tools=WEATHER,
                                  tool_choice="required")
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert parts.host.codec.decode(seen[0].prompt[-3:]) == " to=functions"


def test_a_call_to_what_was_not_offered_is_an_error_never_a_phantom_call(launched, tmp_path):
    parts, base, c = make_app(launched, tmp_path, CALL)
    for extra in ({}, {"tools": WEATHER, "tool_choice": "none"}):
        with pytest.raises(openai.APIStatusError, match="called 'functions.get_weather', which this request did "
                                                        "not offer") as caught:
            c.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "x"}], **extra)
        assert caught.value.status_code == 503
    chunks = httpx.post(base + "/v1/chat/completions", timeout=60, json={
        "model": "tiny-test", "stream": True, "messages": [{"role": "user", "content": "x"}]}).text
    assert "did not offer" in chunks and "tool_calls" not in chunks
    answers = [e for e in parts.oversight.audit.store.entries() if e.action == "answer"]
    assert answers and all(e.outcome == "error" for e in answers)


def test_openai_error_shape_on_every_v1_status_and_one_model(launched, tmp_path):
    _, base, c = make_app(launched, tmp_path)
    assert c.models.retrieve("tiny-test").id == "tiny-test"
    with pytest.raises(openai.NotFoundError, match="serves 'tiny-test', not 'gpt-4o'"):
        c.models.retrieve("gpt-4o")
    for method, path, status in (("GET", "/v1/nothing-here", 404), ("GET", "/v1/chat/completions", 405),
                                 ("PUT", "/v1/models", 405)):
        r = httpx.request(method, base + path, timeout=30)
        error = r.json()["error"]
        assert r.status_code == status and error["message"] and error["type"], (path, r.text)
    huge = [{"type": "function", "function": {"name": "f", "description": "x" * 5_000_000}}]
    with pytest.raises(openai.BadRequestError, match="limit is 200,000"):
        c.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "x"}], tools=huge)
    with pytest.raises(openai.BadRequestError, match="top_p below 1 needs an inference server"):
        c.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "x"}], top_p=0.5)
    with pytest.raises(openai.BadRequestError, match="`logprobs` is not supported"):
        c.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "x"}], logprobs=True)


def test_a_budget_that_ends_inside_a_header_leaks_no_control_token(launched, tmp_path):
    _, _, c = make_app(launched, tmp_path, "<|channel|>analysis<|message|>Short.<|end|><|start|>assistant"
                                           "<|channel|>final<|message|>Too late.<|return|>")
    r = c.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "x"}], max_tokens=9)
    assert r.choices[0].finish_reason == "length" and r.choices[0].message.content == ""
    assert "<|" not in r.model_dump_json()

"""The guards in front of every route: body caps, the keyless server's Host check, and /v1 bodies that
used to end in a 500 (a lone surrogate, a wrong type, deep nesting, huge arguments) answered 400."""

import json

import httpx
import pytest

from ui.guards import API_BODY_BYTES, HostCheck

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
CALL = {"role": "assistant", "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}
USER = {"role": "user", "content": "hi"}
LONE = "\ud800"


def chat(**body):
    return json.dumps({"model": "", "messages": [USER], **body}, ensure_ascii=True)


BAD_CHATS = {
    "lone surrogate in a message": chat(messages=[{"role": "user", "content": "a" + LONE}]),
    "lone surrogate in a tool description": chat(tools=[{**TOOL, "function": {**TOOL["function"],
                                                                             "description": LONE}}]),
    "lone surrogate in a parameter name": chat(tools=[{**TOOL, "function": {**TOOL["function"], "parameters": {
        "type": "object", "properties": {LONE: {"type": "string"}}}}}]),
    "lone surrogate in a call's name": chat(messages=[USER, {**CALL, "tool_calls": [{**CALL["tool_calls"][0],
        "function": {"name": "get" + LONE, "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "x"}],
        tools=[TOOL]),
    "lone surrogate in arguments": chat(messages=[USER, {**CALL, "tool_calls": [{**CALL["tool_calls"][0],
        "function": {"name": "get_weather", "arguments": '{"city": "' + LONE + '"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "x"}], tools=[TOOL]),
    "lone surrogate in reasoning_content": chat(messages=[USER, {"role": "assistant", "content": "x",
                                                                 "reasoning_content": LONE}, USER]),
    "tool_calls not a list": chat(messages=[USER, {"role": "assistant", "content": None, "tool_calls": 5}]),
    "a call name with spaces and to=": chat(messages=[USER, {**CALL, "tool_calls": [{**CALL["tool_calls"][0],
        "function": {"name": "x to=python", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1",
                                                                     "content": "x"}], tools=[TOOL]),
    "JSON nested 100,000 deep": '{"model": "", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "a megabyte of arguments": chat(messages=[USER, {**CALL, "tool_calls": [{**CALL["tool_calls"][0],
        "function": {"name": "get_weather", "arguments": json.dumps({"city": "x" * 1_000_000})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "x"}], tools=[TOOL]),
}
BAD_RESPONSES = {
    "reasoning as a string": {"model": "", "input": "hi", "reasoning": "high"},
    "lone surrogate in instructions": {"model": "", "input": "hi", "instructions": LONE},
}


@pytest.fixture(scope="module")
def app(codec, tiny_model, tmp_path_factory):
    """One app for the module (the cases only read): the real create + launch on the forced tiny model."""
    from backend.engines.base import EngineInfo
    from backend.engines.transformers_engine import TransformersEngine
    from core.config import Config
    from testkit.forcing import ForceSequence
    from tests.conftest import FORCED_CHAT, free_port
    from tests.support.apps import running_app

    def build(progress):
        ids = codec.encoding.encode(FORCED_CHAT, allowed_special="all")
        return TransformersEngine(tiny_model, do_sample=False, logits_processors=[ForceSequence(ids)],
                                  description=EngineInfo(model="tiny-test"))

    config = Config(data_dir=str(tmp_path_factory.mktemp("guards")), port=free_port(), max_new_tokens=400)
    with running_app(config, build):
        yield f"http://127.0.0.1:{config.port}"


def post(base, path, body: str, **headers):
    return httpx.post(base + path, content=body.encode(), timeout=120,
                      headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize("case", BAD_CHATS)
def test_bad_chat_bodies_are_a_400_with_a_sentence(app, case):
    r = post(app, "/v1/chat/completions", BAD_CHATS[case])
    assert r.status_code == 400, (case, r.status_code, r.text[:300])
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and len(error["message"]) > 20 and "Traceback" not in r.text


@pytest.mark.parametrize("case", BAD_RESPONSES)
def test_bad_responses_bodies_are_a_400_with_a_sentence(app, case):
    r = post(app, "/v1/responses", json.dumps(BAD_RESPONSES[case], ensure_ascii=True))
    assert r.status_code == 400, (case, r.status_code, r.text[:300])
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_a_body_over_the_cap_is_refused_before_it_is_read(app):
    big = chat(messages=[{"role": "user", "content": "x" * (API_BODY_BYTES + 10)}])
    r = post(app, "/v1/chat/completions", big)
    assert r.status_code == 413 and "larger than this server takes" in r.json()["error"]["message"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(API_BODY_BYTES // 2**20 + 2):
            yield b"x" * 2**20
    r = httpx.post(app + "/v1/chat/completions", content=chunks(), headers={"Content-Type": "application/json"},
                   timeout=120)
    assert r.status_code == 413
    page = httpx.post(app + "/gradio_api/queue/join", content=b"x" * (2 * 2**20),
                      headers={"Content-Type": "application/json"}, timeout=120)
    assert page.status_code == 413
    assert httpx.get(app + "/healthz").status_code == 200


def test_a_keyless_server_answers_only_to_names_that_cannot_be_rebound(app):
    """DNS rebinding: evil.example resolved to 127.0.0.1 sends Host: evil.example, and its Origin matches."""
    r = post(app, "/v1/chat/completions", chat(), Host="evil.example:7860", Origin="http://evil.example:7860")
    assert r.status_code == 421 and "--allowed-hosts evil.example" in r.json()["error"]["message"]
    assert httpx.get(app + "/", headers={"Host": "evil.example"}).status_code == 421
    assert httpx.get(app + "/healthz", headers={"Host": "localhost:7860"}).status_code == 200


@pytest.mark.parametrize("host, ok", [("127.0.0.1:7860", True), ("[::1]:7860", True), ("localhost", True),
                                      ("10.0.0.5", True), ("app.localhost:1", True), ("evil.example", False),
                                      ("mybox.lan:7860", True), ("127.0.0.1.nip.io", False)])
def test_which_hosts_pass(host, ok):
    assert HostCheck(None, allowed="mybox.lan").permits(host) is ok
    assert HostCheck(None, allowed="*").permits(host)


def test_the_pages_api_says_what_is_wrong(app):
    """Through Gradio's own API (what a script would call): a string where a number goes, and a lone
    surrogate in the functions JSON, are sentences, not "error: null" or "Something went wrong"."""
    from gradio_client import Client

    client = Client(app + "/", verbose=False)
    bad_tokens = ("hi", None, "medium", "", 1.0, "lots", [], "")
    bad_functions = ("hi", None, "medium", "", 1.0, 100, [], '[{"name": "f", "description": "\\ud800"}]')
    for args, said in ((bad_tokens, "Expected a `float`"), (bad_functions, "not valid Unicode")):
        with pytest.raises(Exception) as failed:
            client.predict(*args, api_name="/send")
        assert said in str(failed.value), str(failed.value)

"""The agent loop with --engine openai: token mode (vLLM's ids, replayed over real HTTP) runs the same
loop as the local model; chat mode sends functions as OpenAI `tools` and results as `role: "tool"`."""

import json

import pytest

from backend.engines.openai_engine import OpenAIEngine
from backend.harmony.bridge import DeltaWriter
from backend.services.chat import ChatOptions, ChatService
from backend.serving.host import ModelHost
from backend.tools.toolbox import BUILT_IN_FUNCTIONS, FunctionTool, Toolbox
from tests.support.replay_server import Reply, recorded

CALL = ("<|channel|>analysis<|message|>Use calculate.<|end|><|start|>assistant to=functions.calculate"
        '<|channel|>commentary <|constrain|>json<|message|>{"expression": "17 + 25"}')
ANSWER = "<|channel|>analysis<|message|>It said 42.<|end|><|start|>assistant<|channel|>final<|message|>42."


def token_stream(codec, text: str, stop_id: int) -> list[str]:
    """A vLLM /v1/completions stream in token mode (`return_token_ids`), one id per chunk, ended by a stop id."""
    lines = []
    for token in codec.encoding.encode(text, allowed_special="all"):
        chunk = {"choices": [{"index": 0, "text": "", "finish_reason": None, "stop_reason": None, "token_ids": [token]}]}
        lines += ["data: " + json.dumps(chunk), ""]
    end = {"choices": [{"index": 0, "text": "", "finish_reason": "stop", "stop_reason": stop_id, "token_ids": []}]}
    return lines + ["data: " + json.dumps(end), "", "data: [DONE]", ""]


def service_over(server, codec, repo, api):
    def build(progress):
        return OpenAIEngine(server.url + "/v1", api=api, delta_writer=lambda: DeltaWriter(codec.encoding)).connect()

    host = ModelHost(build, codec, {})
    host.start(background=False)
    tools = Toolbox({"calculate": FunctionTool(*BUILT_IN_FUNCTIONS["calculate"])})
    return ChatService(repo, host, toolbox=tools), host


def test_token_mode_runs_the_loop_like_the_local_model(server, codec, repo):
    server.route("/v1/completions", Reply(token_stream(codec, CALL, codec.call_id)),
                 Reply(token_stream(codec, ANSWER, codec.return_id)))
    service, host = service_over(server, codec, repo, "completions")
    try:
        snaps = list(service.send("alice", None, "What is 17 + 25?", ChatOptions(max_new_tokens=200,
                                                                                  tools=["calculate"])))
    finally:
        host.close()
    m = repo.get("alice", snaps[0].conversation_id).messages[-1]
    assert (m.status, m.content) == ("complete", "42.")
    assert [e.kind for e in m.trace] == ["reasoning", "tool_call", "tool_result", "reasoning"]
    assert m.trace[2].output == "42"
    second = [body for path, body in server.requests if path == "/v1/completions"][-1]
    prompt = codec.decode(second["prompt"])
    assert "<|start|>functions.calculate to=assistant<|channel|>commentary<|message|>42<|end|>" in prompt
    assert prompt.endswith("<|start|>assistant") and "Use calculate." in prompt  # the turn's reasoning kept


def test_chat_mode_sends_tools_and_tool_results_as_openai_messages(server, codec, repo):
    server.route("/v1/chat/completions", Reply(recorded("vllm_chat_tool_call.sse")),
                 Reply(recorded("vllm_chat.sse")))
    service, host = service_over(server, codec, repo, "chat")
    weather = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    options = ChatOptions(max_new_tokens=200, tools=["calculate"], functions=[weather])
    try:
        cid = list(service.send("alice", None, "Weather in Paris?", options))[0].conversation_id
        assert service.waiting_call("alice", cid).arguments == '{"city": "Paris"}'
        list(service.tool_result("alice", cid, "sunny, 21 C", options))
    finally:
        host.close()
    first, second = [body for path, body in server.requests if path == "/v1/chat/completions"]
    assert sorted(t["function"]["name"] for t in first["tools"]) == ["calculate", "get_weather"]
    assistant, tool = second["messages"][-2:]
    call = assistant["tool_calls"][0]
    assert (call["function"]["name"], json.loads(call["function"]["arguments"])) == ("get_weather", {"city": "Paris"})
    assert tool == {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21 C"}
    assert repo.get("alice", cid).messages[-1].content == "2 + 2 = 4."  # the recorded answer, same message


def test_chat_mode_refuses_the_built_in_tools_with_a_reason(server, codec, repo):
    from backend.tools.sandbox import PythonSandbox
    from backend.tools.toolbox import PythonTool
    from core.errors import InputError

    service, host = service_over(server, codec, repo, "chat")
    service.toolbox = Toolbox({"python": PythonTool(PythonSandbox()), **service.toolbox.tools}, defaults=None)
    try:
        assert service.default_tools() == ["calculate"]  # python is not ticked before a chat-only server
        with pytest.raises(InputError, match="token mode"):
            service.send("alice", None, "hi", ChatOptions(max_new_tokens=50, tools=["python"]))
    finally:
        host.close()

"""The OpenAI-compatible engine against recorded server streams replayed over real HTTP."""

import json
import time

import pytest

from backend.engines.openai_engine import OpenAIEngine
from backend.harmony.bridge import DeltaWriter
from backend.harmony.codec import PromptMessage, PromptSettings
from backend.harmony.structured import FinalAnswerSpec, chat_format, response_format
from backend.serving.worker import ChatRequest, Worker
from core.errors import ModelLoadError
from core.events import Answer, Done, Reasoning, ToolCall
from tests.support.replay_server import Reply, chat_stream, llamacpp_stream, recorded
from tests.support.threads import in_parallel

REASONING = "The user asks for 2+2. Simple arithmetic."
ANSWER = "2 + 2 = 4."


def engine(server, codec, api="auto", **kwargs):
    e = OpenAIEngine(server.url + "/v1", api=api, delta_writer=lambda: DeltaWriter(codec.encoding), **kwargs)
    return e.connect()


def ask(e, codec, text="What is 2+2?", **settings):
    worker = Worker(e, codec, time_limit_s=30)
    return list(worker.submit(ChatRequest([PromptMessage("user", text)], PromptSettings(**settings), 1.0, 256)).events())


def split(events):
    reasoning = "".join(e.text for e in events if isinstance(e, Reasoning))
    answer = "".join(e.text for e in events if isinstance(e, Answer))
    return reasoning, answer, events[-1]


@pytest.mark.parametrize("api, path, name", [
    ("chat", "/v1/chat/completions", "vllm_chat.sse"),
    ("chat", "/v1/chat/completions", "llamacpp_chat.sse"),
    ("chat", "/v1/chat/completions", "llamacpp_chat_raw_harmony.sse"),
    ("chat", "/v1/chat/completions", "ollama_v1_chat.sse"),
    ("ollama", "/api/chat", "ollama_api_chat.ndjson"),
    ("completions", "/v1/completions", "vllm_completions_tokens.sse"),
])
def test_reasoning_and_answer_apart_in_every_format(server, codec, api, path, name):
    server.route(path, Reply(recorded(name)))
    reasoning, answer, done = split(ask(engine(server, codec, api=api), codec, effort="high"))
    assert (reasoning, answer) == (REASONING, ANSWER)
    assert isinstance(done, Done) and done.stop_reason == "return" and done.error is None
    _, body = server.requests[-1]
    if api == "completions":
        assert body["prompt"][:3] == [200006, 17360, 200008] and 200002 in body["stop_token_ids"]
    elif api == "ollama":
        assert body["think"] == "high" and body["messages"][-1] == {"role": "user", "content": "What is 2+2?"}
    else:
        assert body["reasoning_effort"] == "high" and body["messages"][-1]["content"] == "What is 2+2?"


def llama_cpp_own_parse(name):
    """What llama.cpp itself made of the model's output: its reasoning_content, content and tool calls."""
    fields = {"reasoning_content": "", "content": "", "arguments": ""}
    for line in recorded(name):
        for choice in json.loads(line[6:])["choices"] if line.startswith("data: {") else []:
            delta = choice["delta"]
            for key in ("reasoning_content", "content"):
                fields[key] += delta.get(key) or ""
            for call in delta.get("tool_calls") or []:
                fields["arguments"] += call["function"].get("arguments") or ""
    return fields


@pytest.mark.parametrize("ask_name", ["chat", "tool_call"])
def test_live_llama_cpp_streams_read_alike_in_all_three_ways(server, codec, ask_name):
    # captured from a real llama-server on the demo model (tests/recorded/README.md); greedy, so the
    # --reasoning-format none run and the token-mode run produced the same model output as the parsed one
    parsed = llama_cpp_own_parse(f"llamacpp_live_{ask_name}.sse")
    assert parsed["reasoning_content"] and (parsed["content"] or parsed["arguments"])
    for api, path, name in [("chat", "/v1/chat/completions", f"llamacpp_live_{ask_name}.sse"),
                            ("chat", "/v1/chat/completions", f"llamacpp_live_raw_{ask_name}.sse"),
                            ("llamacpp", "/completion", f"llamacpp_live_tokens_{ask_name}.sse")]:
        server.route(path, Reply(recorded(name)))
        events = ask(engine(server, codec, api=api), codec, tools=[{"name": "get_weather", "parameters": {}}])
        reasoning, answer, done = split(events)
        calls = [e for e in events if isinstance(e, ToolCall)]
        assert (reasoning, answer) == (parsed["reasoning_content"], parsed["content"]), name
        assert [(c.arguments, c.content_type) for c in calls] == (
            [(parsed["arguments"], "<|constrain|>json")] if parsed["arguments"] else []), name
        assert not any(getattr(e, "malformed", False) for e in events), name
        assert done.stop_reason == ("call" if calls else "return") and done.error is None


def test_server_usage_figures_reach_the_stats(server, codec):
    server.route("/v1/chat/completions", Reply(recorded("llamacpp_live_chat.sse")))
    stats = split(ask(engine(server, codec, api="chat"), codec))[2].stats
    assert stats.total_tokens == 66 and stats.tokens_per_s == pytest.approx(195.36, abs=0.01)  # llama.cpp's timings
    assert stats.reasoning_tokens > 0 and stats.answer_tokens > 0 and stats.ttft is not None
    server.route("/api/chat", Reply(recorded("ollama_api_chat.ndjson")))
    stats = split(ask(engine(server, codec, api="ollama"), codec))[2].stats
    assert stats.total_tokens == 30 and stats.tokens_per_s == pytest.approx(75.0)  # 30 tokens in 0.4 s


def test_tool_call_becomes_a_harmony_tool_call(server, codec):
    server.route("/v1/chat/completions", Reply(recorded("vllm_chat_tool_call.sse")))
    events = ask(engine(server, codec, api="chat"), codec, tools=[{"name": "get_weather", "parameters": {}}])
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [(c.recipient, c.arguments, c.malformed) for c in calls] == [
        ("functions.get_weather", '{"city": "Paris"}', False)]
    assert events[-1].stop_reason == "call"
    assert server.requests[-1][1]["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("cities, stop, error", [
    (["Paris", "Rome"], "call", None),
    (["Rome"], "error", "The call to functions.get_weather does not match the function's parameters (strict)"),
])
def test_a_strict_functions_call_is_checked_against_its_parameters(server, codec, cities, stop, error):
    """A server is trusted no further than the check: a strict function's call whose arguments do not match
    its parameters ends as an error, never as that call."""
    pytest.importorskip("llguidance")
    server.route("/v1/chat/completions", Reply(recorded("vllm_chat_tool_call.sse")))
    parameters = {"type": "object", "properties": {"city": {"enum": cities}}, "required": ["city"]}
    events = ask(engine(server, codec, api="chat"), codec,
                 tools=[{"name": "get_weather", "parameters": parameters, "strict": True}])
    assert events[-1].stop_reason == stop
    assert (events[-1].error or "").startswith(error or "") and (error is None) == (events[-1].error is None)
    if error:
        assert "the inference server did not keep to it" in events[-1].error


def test_probe_picks_token_mode_where_the_server_returns_ids(server, codec):
    server.route("/v1/completions",
                 Reply(['{"choices":[{"index":0,"text":"","token_ids":[200005],"finish_reason":"length"}]}'],
                       content_type="application/json"),
                 Reply(recorded("vllm_completions_tokens.sse")))
    e = engine(server, codec)
    assert e.api == "completions" and e.model == "openai/gpt-oss-20b"
    assert split(ask(e, codec))[:2] == (REASONING, ANSWER)


def test_probe_picks_llama_cpp_token_mode(server, codec):
    # llama.cpp's /v1/completions takes the ids but answers in text; its native /completion returns ids
    server.route("/v1/completions", Reply(['{"choices":[{"index":0,"text":"<|channel|>","finish_reason":"length"}]}'],
                                          content_type="application/json"))
    server.route("/completion", Reply(['{"content":"<|channel|>","tokens":[200005],"stop":true}'],
                                      content_type="application/json"),
                 Reply(recorded("llamacpp_live_tokens_chat.sse")))
    e = engine(server, codec)
    assert e.api == "llamacpp" and "llama.cpp /completion, token ids" in e.description.engine
    reasoning, answer, done = split(ask(e, codec, "Convert 3 km to m", effort="high"))
    assert answer == "3 km = 3000 m" and reasoning and done.stop_reason == "return"
    path, body = server.requests[-1]
    assert path == "/completion" and body["prompt"][:3] == [200006, 17360, 200008]
    assert body["return_tokens"] and body["stream"] and body["n_predict"] == 256


def test_probe_falls_back_to_chat(server, codec):
    server.route("/v1/completions", Reply(['{"detail":"prompt must be a string."}'], status=400,
                                          content_type="application/json"))
    assert engine(server, codec).api == "chat"


def test_unreachable_server_is_a_clear_load_error(codec):
    with pytest.raises(ModelLoadError, match="Could not reach the inference server.*--base-url"):
        OpenAIEngine("http://127.0.0.1:9/v1", delta_writer=lambda: DeltaWriter(codec.encoding)).connect()


def test_retries_before_the_first_token_only(server, codec):
    server.route("/v1/chat/completions", Reply(['{"error":"overloaded"}'], status=503),
                 Reply(recorded("vllm_chat.sse")))
    assert split(ask(engine(server, codec, api="chat"), codec))[:2] == (REASONING, ANSWER)
    assert len([p for p, _ in server.requests if p == "/v1/chat/completions"]) == 2
    # a stream that breaks after tokens is not retried: the partial answer is kept with an error
    server.requests.clear()
    server.route("/v1/chat/completions", Reply(recorded("vllm_chat.sse"), drop_after=12),
                 Reply(recorded("vllm_chat.sse")))
    reasoning, answer, done = split(ask(engine(server, codec, api="chat"), codec))
    assert reasoning.startswith("The user asks") and done.stop_reason == "error"
    assert "closed the stream before the answer ended" in done.error
    assert len([p for p, _ in server.requests if p == "/v1/chat/completions"]) == 1


@pytest.mark.parametrize("status, detail, hint", [(400, "max_tokens is too large", "HTTP 400"),
                                                  (401, "invalid api key", "--api-key"),
                                                  (404, "model not found", "--served-model")])
def test_http_errors_are_not_retried_and_say_what_to_do(server, codec, status, detail, hint):
    server.route("/v1/chat/completions", Reply([f'{{"error":{{"message":"{detail}"}}}}'], status=status,
                                               content_type="application/json"))
    done = split(ask(engine(server, codec, api="chat"), codec))[2]
    assert done.stop_reason == "error" and detail in done.error and hint in done.error
    assert len([p for p, _ in server.requests if p == "/v1/chat/completions"]) == 1


def test_malformed_stream_is_an_error_not_a_crash(server, codec):
    server.route("/v1/chat/completions", Reply(["data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}", "",
                                                "data: {not json", ""]))
    done = split(ask(engine(server, codec, api="chat"), codec))[2]
    assert done.stop_reason == "error" and "malformed stream" in done.error


def test_stop_closes_the_stream_and_the_server_sees_it(server, codec):
    server.route("/v1/chat/completions", Reply(recorded("vllm_chat.sse") * 40, pause_s=0.05))
    worker = Worker(engine(server, codec, api="chat"), codec)
    job = worker.submit(ChatRequest([PromptMessage("user", "go on")], PromptSettings(), 1.0, 256))
    events = []
    for event in job.events():
        events.append(event)
        if isinstance(event, Reasoning) and len(events) == 3:
            job.cancel()
    assert events[-1].stop_reason == "stopped" and any(isinstance(e, Reasoning) for e in events)
    deadline = time.time() + 10
    while server.disconnects == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert server.disconnects == 1  # the server's write failed: the request is aborted there


def test_waits_for_a_server_that_is_still_starting(codec, monkeypatch):
    monkeypatch.setattr("backend.engines.openai_engine.SERVER_WAIT_POLL_S", 0.05)
    stages = []
    with pytest.raises(ModelLoadError, match="Could not reach"):
        OpenAIEngine("http://127.0.0.1:9/v1", delta_writer=lambda: DeltaWriter(codec.encoding)).connect(
            lambda stage, fraction: stages.append(stage), wait_s=0.3)
    assert any("Waiting for the inference server" in s for s in stages)


def test_a_silent_server_times_out_with_a_clear_error(server, codec, monkeypatch):
    monkeypatch.setattr("backend.engines.openai_engine.RETRY_BACKOFF_S", 0.01)
    lines = recorded("vllm_chat.sse")
    server.route("/v1/chat/completions", Reply(lines, pause_s=2.0))  # the role chunk, then silence
    done = split(ask(engine(server, codec, api="chat", timeout_s=0.3), codec))[2]
    assert done.stop_reason == "error" and "stopped answering" in done.error and "--server-timeout-s" in done.error
    assert len([p for p, _ in server.requests if p == "/v1/chat/completions"]) == 3  # nothing came: retried


def test_one_broken_answer_leaves_the_other_chats_alone(server, codec):
    broken = Reply(recorded("vllm_chat.sse")[:8] + ["data: {garbage", ""], pause_s=0.02)
    server.route("/v1/chat/completions", broken, Reply(recorded("vllm_chat.sse"), pause_s=0.02),
                 Reply(recorded("vllm_chat.sse"), pause_s=0.02))
    worker = Worker(engine(server, codec, api="chat"), codec)
    jobs = [worker.submit(ChatRequest([PromptMessage("user", f"q{i}")], PromptSettings(), 1.0, 64)) for i in range(3)]
    results = in_parallel(lambda job: split(list(job.events())), [(job,) for job in jobs])
    reasons = sorted(r[2].stop_reason for r in results)
    assert reasons == ["error", "return", "return"]
    assert all(r[1] == ANSWER for r in results if r[2].stop_reason == "return")
    assert worker.active == 0


SUM = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"],
       "additionalProperties": False}


def ask_for(e, codec, fmt):
    worker = Worker(e, codec, time_limit_s=30)
    request = ChatRequest([PromptMessage("user", "What is 2+2?")], PromptSettings(response_format=fmt), 1.0, 256,
                          response_format=fmt)
    return list(worker.submit(request).events())


@pytest.mark.parametrize("api, path", [("chat", "/v1/chat/completions"), ("ollama", "/api/chat")])
def test_a_chat_mode_server_is_asked_for_the_format_and_its_answer_is_checked(server, codec, api, path):
    """In chat mode the server renders the prompt, so it applies a response format itself (vLLM, SGLang,
    llama.cpp and LM Studio take OpenAI's response_format, Ollama its `format`); the answer it sends is
    checked against the schema, and one that does not match ends as an error, never as plain text."""
    pytest.importorskip("llguidance")
    fmt = response_format("Sum", SUM)
    right = (Reply(chat_stream("Add them.", '{"answer": 4}')) if api == "chat" else
             Reply([json.dumps({"message": {"role": "assistant", "content": '{"answer": 4}'}, "done": False}),
                    json.dumps({"message": {"role": "assistant", "content": ""}, "done": True,
                                "done_reason": "stop"})], content_type="application/x-ndjson"))
    wrong = Reply(recorded("vllm_chat.sse" if api == "chat" else "ollama_api_chat.ndjson"))
    server.route(path, right, wrong)
    e = engine(server, codec, api=api)
    assert e.description.server_formats
    _, answer, done = split(ask_for(e, codec, fmt))
    assert (answer, done.stop_reason, done.error) == ('{"answer": 4}', "return", None)
    _, body = server.requests[-1]
    if api == "chat":
        assert body["response_format"] == chat_format(fmt)
    else:
        assert body["format"] == SUM
    _, answer, done = split(ask_for(e, codec, fmt))
    assert answer == ANSWER and done.stop_reason == "error"
    assert done.error.startswith("The answer does not match the response format (it stops matching the schema "
                                 "at '2 + 2 = 4.'): the inference server did not keep to it.")


def test_llama_cpp_in_token_mode_is_sent_a_grammar_of_the_whole_completion(server, codec):
    """llama.cpp constrains by a GBNF grammar that the app writes (backend/harmony/gbnf.py); an answer
    it closes with `<|call|>` (either of its end ids is allowed where the answer may end) is still an
    answer, not a call to no one."""
    pytest.importorskip("llguidance")
    fmt = response_format("Sum", SUM)
    completion = codec.encoding.encode('<|channel|>analysis<|message|>Add them.<|end|><|start|>assistant'
                                       '<|channel|>final<|message|>{"answer":4}<|call|>', allowed_special="all")
    server.route("/completion", Reply(llamacpp_stream(completion)), Reply(llamacpp_stream(completion)))
    e = engine(server, codec, api="llamacpp")
    assert e.description.server_grammars and not e.description.server_formats
    reasoning, answer, done = split(ask_for(e, codec, fmt))
    assert server.requests[-1][1]["grammar"] == FinalAnswerSpec(fmt).gbnf()
    assert (reasoning, answer, done.stop_reason, done.error) == ("Add them.", '{"answer":4}', "return", None)
    ask(e, codec)
    assert "grammar" not in server.requests[-1][1]  # no format, no grammar


def test_ollama_is_asked_for_any_json_object_and_token_mode_for_no_format(server, codec):
    server.route("/api/chat", Reply(recorded("ollama_api_chat.ndjson")))
    ask_for(engine(server, codec, api="ollama"), codec, response_format("any", None))
    assert server.requests[-1][1]["format"] == "json"
    server.route("/v1/completions", Reply(recorded("vllm_completions_tokens.sse")))
    e = engine(server, codec, api="completions")
    assert not e.description.server_formats  # the pipeline refuses a format here (NO_CONSTRAINTS)
    ask(e, codec)
    assert not {"response_format", "format", "structured_outputs"} & server.requests[-1][1].keys()

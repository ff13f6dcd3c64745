"""The agent loop on the real tiny model, forced to call tools: each result feeds the next generation."""

import time

import pytest

from backend.harmony.codec import PromptMessage, PromptSettings
from backend.services.chat import ChatOptions, ChatService
from backend.tools.browser import BrowserTool
from backend.tools.docs import LocalDocs, index_folder
from backend.tools.sandbox import PythonSandbox
from backend.tools.toolbox import BUILT_IN_FUNCTIONS, FunctionTool, PythonTool, Toolbox
from storage.documents import Documents
from tests.support.threads import wait_for

THINK = "<|channel|>analysis<|message|>{}<|end|><|start|>assistant"


def python_call(code, thought="Compute with python."):
    return THINK.format(thought) + f" to=python<|channel|>analysis code<|message|>{code}<|call|>"


def function_call(name, arguments):
    return (THINK.format("Use the function.") + f" to=functions.{name}<|channel|>commentary <|constrain|>json"
            f"<|message|>{arguments}<|call|>")


def browser_call(method, arguments):
    return THINK.format("Look it up.") + f" to=browser.{method}<|channel|>analysis code<|message|>{arguments}<|call|>"


def answer(text, thought="The tool answered."):
    return THINK.format(thought) + f"<|channel|>final<|message|>{text}<|return|>"


ANSWER = answer("17 + 25 = 42.")


@pytest.fixture(scope="module")
def python_tool():
    sandbox = PythonSandbox(timeout_s=20)
    assert sandbox.probe() is None
    return PythonTool(sandbox)


def toolbox(python_tool=None, browser=None):
    tools = {name: FunctionTool(*BUILT_IN_FUNCTIONS[name]) for name in ("calculate", "current_time")}
    if python_tool is not None:
        tools["python"] = python_tool
    if browser is not None:
        tools["browser"] = browser
    return Toolbox(tools)


def run(service, tools, text="What is 17 + 25?", **kw):
    snaps = list(service.send("alice", None, text, ChatOptions(max_new_tokens=300, tools=tools, **kw)))
    return service.repo.get("alice", snaps[0].conversation_id).messages[-1]


def spy(host):
    """Every request the worker gets (the turn's generations, in order)."""
    worker, requests = host.worker(), []
    real = worker.submit
    worker.submit = lambda request: requests.append(request) or real(request)
    return requests


def kinds(message):
    return [e.kind for e in message.trace]


def test_a_python_result_feeds_the_next_generation(repo, make_host, python_tool, codec):
    host = make_host(python_call("print(17 + 25)"), ANSWER)
    requests = spy(host)
    m = run(ChatService(repo, host, toolbox=toolbox(python_tool)), ["python"])
    assert (m.status, m.content, m.error) == ("complete", "17 + 25 = 42.", None)
    assert kinds(m) == ["reasoning", "tool_call", "tool_result", "reasoning"]
    call, result = m.trace[1], m.trace[2]
    assert (call.recipient, call.arguments) == ("python", "print(17 + 25)")
    assert (result.output, result.status) == ("42\n", "ok") and result.seconds > 0
    second = codec.decode(codec.render(requests[1].turns, requests[1].settings))
    assert "<|start|>python to=assistant<|channel|>analysis<|message|>42\n<|end|><|start|>assistant" in second
    assert [(h["role"], h.get("recipient")) for h in m.harmony] == [
        ("assistant", None), ("assistant", "python"), ("tool", "assistant"), ("assistant", None), ("assistant", None)]
    assert m.reasoning == "Compute with python.\n\nThe tool answered."  # each step's thoughts, in order


def test_reasoning_is_kept_across_tool_calls_and_dropped_after_the_answer(repo, make_host, python_tool, codec):
    host = make_host(python_call("print(42)", thought="SECRET PLAN"), ANSWER)
    requests = spy(host)
    m = run(ChatService(repo, host, toolbox=toolbox(python_tool)), ["python"])
    during = codec.decode(codec.render(requests[1].turns, requests[1].settings))
    assert "SECRET PLAN" in during  # the turn in progress keeps its reasoning across the call
    after = codec.decode(codec.render([PromptMessage("user", "q"), PromptMessage("assistant", m.content, m.reasoning, m.harmony),
                                       PromptMessage("user", "next")], PromptSettings()))
    # dropped after the final answer, with the python call and its result (they are on the analysis channel)
    assert "SECRET PLAN" not in after and "print(42)" not in after and "17 + 25 = 42." in after


def test_calculate(repo, make_host):
    m = run(ChatService(repo, make_host(function_call("calculate", '{"expression": "(17 + 25) * 2"}'), ANSWER),
                        toolbox=toolbox()), ["calculate"])
    result = m.trace[2]
    assert (result.recipient, result.output, result.status) == ("functions.calculate", "84", "ok")
    assert m.status == "complete"


@pytest.mark.parametrize("call, expect", [
    (function_call("nope", "{}"), "there is no tool 'functions.nope'"),
    (function_call("calculate", '{"expression": "__import__(\\"os\\")"}'), "not allowed in an arithmetic"),
    (function_call("calculate", "not json"), "not valid JSON"),
])
def test_a_bad_call_is_an_error_result_and_the_turn_goes_on(repo, make_host, call, expect):
    m = run(ChatService(repo, make_host(call, ANSWER), toolbox=toolbox()), ["calculate"])
    result = m.trace[2]
    assert result.status == "error" and expect in result.output
    assert (m.status, m.content) == ("complete", "17 + 25 = 42.")  # the model read the error and answered


def test_a_failing_program_is_an_error_result(repo, make_host, python_tool):
    m = run(ChatService(repo, make_host(python_call("1/0"), ANSWER), toolbox=toolbox(python_tool)), ["python"])
    assert m.trace[2].status == "error" and "ZeroDivisionError" in m.trace[2].output
    assert m.status == "complete"


def test_a_call_with_no_tools_enabled_is_answered_with_an_error(repo, make_host, python_tool):
    m = run(ChatService(repo, make_host(python_call("print(1)"), ANSWER), toolbox=toolbox(python_tool)), [])
    assert "no tools are enabled" in m.trace[2].output and m.status == "complete"


def test_the_step_limit_ends_the_turn(repo, make_host):
    service = ChatService(repo, make_host(function_call("calculate", '{"expression": "1+1"}')), toolbox=toolbox(),
                          max_tool_calls=2)
    m = run(service, ["calculate"])
    results = [e for e in m.trace if e.kind == "tool_result"]
    assert [r.status for r in results] == ["ok", "ok", "error"] and "Not run" in results[-1].output
    assert m.status == "error" and "more than 2 tool calls" in m.error


SLOW = "import time\nprint('started', flush=True)\ntime.sleep(15)\nprint('never')"


def test_stop_during_a_tool_run_kills_it_and_keeps_its_output(repo, make_host, python_tool):
    service = ChatService(repo, make_host(python_call(SLOW), ANSWER), toolbox=toolbox(python_tool))
    snaps = service.send("alice", None, "run it", ChatOptions(max_new_tokens=300, tools=["python"]))
    cid = next(iter(snaps)).conversation_id
    (turn,) = service.turns.of(cid)
    wait_for(lambda: any(e.kind == "tool_call" for e in turn.partial_fields()["trace"]))
    time.sleep(1.0)  # the program is running now
    started = time.monotonic()
    assert service.stop("alice", cid)
    wait_for(lambda: not service.turns.of(cid))
    assert time.monotonic() - started < 5
    m = repo.get("alice", cid).messages[-1]
    result = m.trace[-1]
    assert (m.status, result.kind, result.status) == ("stopped", "tool_result", "stopped")
    assert result.output.startswith("started") and "never" not in result.output


def test_a_turn_waiting_on_a_tool_holds_no_decoding_slot(repo, make_host, python_tool):
    host = make_host(python_call("import time\ntime.sleep(4)\nprint('slow done')"), ANSWER,
                     max_active=1, max_waiting=0)
    service = ChatService(repo, host, toolbox=toolbox(python_tool))
    slow = service.send("alice", None, "slow", ChatOptions(max_new_tokens=300, tools=["python"]))
    cid = next(iter(slow)).conversation_id
    (turn,) = service.turns.of(cid)
    wait_for(lambda: any(e.kind == "tool_call" for e in turn.partial_fields()["trace"]))
    other = run(service, [], text="meanwhile")  # the only slot is free while the tool runs
    assert other.status == "complete" and service.turns.of(cid)  # the slow one still runs
    wait_for(lambda: not service.turns.of(cid))
    assert repo.get("alice", cid).messages[-1].status == "complete"


HANGS = "import time\nprint('started', flush=True)\ntime.sleep(600)\nprint('never')"


def test_the_time_limit_covers_the_whole_turn(repo, make_host, python_tool):
    """The turn's limit (here 15 s, enough for the first generation even on a loaded machine) cuts the tool
    that runs past it: the tool is stopped, not waited for (it would sleep 600 s), and the turn ends."""
    host = make_host(python_call(HANGS), ANSWER, time_limit_s=15.0)
    m = run(ChatService(repo, host, toolbox=toolbox(python_tool)), ["python"])
    assert m.status == "error" and "time limit" in m.error
    assert m.trace[2].status == "timeout" and m.trace[2].seconds < 60 and "never" not in m.trace[2].output


def test_browser_search_open_and_cite_over_local_documents(repo, make_host, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "license.md").write_text("# License\n\ngpt-oss is released under the Apache 2.0 license.\n")
    (docs / "setup.html").write_text("<html><head><title>Setup</title></head><body><p>Install with pip.</p></body></html>")
    documents = Documents(repo)
    assert index_folder(docs, documents)["added"] == 2
    host = make_host(browser_call("search", '{"query": "license"}'), browser_call("open", '{"id": 0}'),
                     answer("It is Apache 2.0 【1†L2】.", thought="Found it."))
    m = run(ChatService(repo, host, toolbox=toolbox(browser=BrowserTool(LocalDocs(documents)))), ["browser"],
            text="What license?")
    search, opened = [e for e in m.trace if e.kind == "tool_result"]
    assert search.summary == "1 result" and "【0†License†doc/" in search.output
    assert "L2: gpt-oss is released under the Apache 2.0 license." in opened.output
    assert opened.pages[0]["cursor"] == 1 and opened.pages[0]["url"].startswith("doc/")
    assert m.content == "It is Apache 2.0 【1†L2】." and m.status == "complete"


WEATHER = {"name": "get_weather", "description": "Current weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_a_user_function_pauses_the_turn_until_its_result_is_typed_in(repo, make_host, codec):
    host = make_host(function_call("get_weather", '{"city": "Oslo"}'), answer("It is sunny in Oslo."))
    requests = spy(host)
    service = ChatService(repo, host, toolbox=toolbox())
    options = ChatOptions(max_new_tokens=300, tools=[], functions=[WEATHER])
    snaps = list(service.send("alice", None, "Weather in Oslo?", options))
    cid = snaps[0].conversation_id
    paused = repo.get("alice", cid).messages[-1]
    assert (paused.status, paused.stop_reason, kinds(paused)) == ("complete", "call", ["reasoning", "tool_call"])
    call = service.waiting_call("alice", cid)
    assert (call.recipient, call.arguments) == ("functions.get_weather", '{"city": "Oslo"}')
    with pytest.raises(Exception, match="does not exist"):
        list(service.tool_result("bob", cid, "stolen", options))
    list(service.tool_result("alice", cid, '{"sky": "sunny", "c": 21}', options))
    done = repo.get("alice", cid).messages
    assert len(done) == 2  # the same answer went on: no new message
    m = done[-1]
    assert (m.status, m.content) == ("complete", "It is sunny in Oslo.")
    assert kinds(m) == ["reasoning", "tool_call", "tool_result", "reasoning"]
    assert m.trace[2].output == '{"sky": "sunny", "c": 21}' and m.trace[2].summary == "your result"
    prompt = codec.decode(codec.render(requests[-1].turns, requests[-1].settings))
    assert "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{\"sky\"" in prompt
    assert "type get_weather = (_: {" in prompt  # the function is described to the model
    assert service.waiting_call("alice", cid) is None
    with pytest.raises(Exception, match="No function call is waiting"):
        list(service.tool_result("alice", cid, "again", options))


@pytest.mark.parametrize("functions, error", [
    ("[{", "not valid JSON"), ('[{"name": "bad name"}]', "letters, digits"),
    ('[{"name": "calculate"}]', "built-in"), ('[{"name": "f", "parameters": {"type": "array"}}]', "type object"),
    ('[{"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": 5}}}}]', "not a valid JSON Schema"),
    ('[{"name": "f"}, {"name": "f"}]', "used twice")])
def test_bad_function_definitions_are_refused_with_a_reason(repo, make_host, functions, error):
    service = ChatService(repo, make_host(), toolbox=toolbox())
    with pytest.raises(Exception, match=error):
        service.send("alice", None, "hi", ChatOptions(max_new_tokens=50, functions=functions))

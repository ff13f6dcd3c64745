"""Tools from MCP servers: servers written with the SDK (tests/support/mcp_servers.py) over stdio and
streamable HTTP, and a real published one (`mcp-server-time` from PyPI), driven through the agent loop on
the forced tiny model: the call in the prompt, the result in the next prompt, the trace in Chromium."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from backend.services.chat import ChatOptions, ChatService
from backend.tools.mcp import MAX_TOOLS, checked_tools, load_config, start_servers
from backend.tools.toolbox import MAX_RESULT_CHARS, Toolbox, ToolContext
from testkit.net import free_port

ROOT = Path(__file__).resolve().parent.parent
THINK = "<|channel|>analysis<|message|>{}<|end|><|start|>assistant"


def mcp_call(recipient, arguments):
    return (THINK.format("Use the server's tool.") + f" to={recipient}<|channel|>commentary <|constrain|>json"
            f"<|message|>{arguments}<|call|>")


def answer(text):
    return THINK.format("The tool answered.") + f"<|channel|>final<|message|>{text}<|return|>"


def ctx(seconds=60):
    return ToolContext(threading.Event(), time.monotonic() + seconds)


def write_config(folder: Path, servers: dict) -> str:
    path = folder / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


TESTS_SERVER = {"command": sys.executable, "args": ["-m", "tests.support.mcp_servers", "stdio"],
                "env": {"PYTHONPATH": str(ROOT), "SERVER_SETTING": "given"}, "cwd": str(ROOT)}
TIME_SERVER = {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The test server over stdio and over HTTP, and mcp-server-time; the app's own environment holds a
    secret none of them may see."""
    os.environ["GPT_OSS_CHAT_TEST_SECRET"] = "app-only"
    port = free_port()
    http = subprocess.Popen([sys.executable, "-m", "tests.support.mcp_servers", "http", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    config = write_config(tmp_path_factory.mktemp("mcp"), {
        "tests": TESTS_SERVER, "time": TIME_SERVER,
        "remote": {"url": f"http://127.0.0.1:{port}/mcp", "headers": {"X-Team": "docs"}, "default": "off"}})
    tools = {t.name: t for t in start_servers(config, timeout_s=3)}
    yield tools
    for tool in tools.values():
        tool.server.close()
    http.kill()
    os.environ.pop("GPT_OSS_CHAT_TEST_SECRET")


def test_the_config_is_the_mcpservers_shape_and_mistakes_are_sentences(tmp_path):
    specs = load_config(Path(write_config(tmp_path, {"tests": TESTS_SERVER, "web": {"url": "https://x/mcp",
                                                                                      "default": "off"}})))
    assert [(s.name, bool(s.command), s.url, s.on_by_default) for s in specs] == \
        [("tests", True, "", True), ("web", False, "https://x/mcp", False)]
    for servers, said in [({"python": TESTS_SERVER}, "namespace"), ({"a-b": TESTS_SERVER}, "namespace"),
                          ({"x": {}}, "either a command"), ({"x": {"command": "a", "url": "http://b"}}, "either"),
                          ({"x": {"command": "a", "args": "b"}}, "args must be"),
                          ({"x": {"url": "file:///etc/passwd"}}, "http:// or https://"),
                          ({"x": {"command": "a", "env": {"A": 1}}}, "must map names to text")]:
        with pytest.raises(ValueError, match=said):
            load_config(Path(write_config(tmp_path, servers)))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="cannot read"):
        load_config(tmp_path / "bad.json")


def test_tools_are_checked_like_user_functions():
    from mcp_types import Tool

    tools = [Tool(name="ok", description="<|start|>stays text", input_schema={"type": "object"}),
             Tool(name="has space", input_schema={"type": "object"}),
             Tool(name="bad_schema", input_schema={"type": "object", "properties": {"a": {"type": 5}}}),
             Tool(name="long", description="d" * 10_000, input_schema={"type": "object"})]
    offered, left_out = checked_tools(tools + [Tool(name=f"t{i}", input_schema={"type": "object"})
                                               for i in range(MAX_TOOLS)])
    assert [t["name"] for t in offered][:2] == ["ok", "long"] and len(offered[1]["description"]) == 4_000
    assert "letters, digits" in left_out["has space"] and "JSON Schema" in left_out["bad_schema"]
    assert "more than 128" in left_out[f"t{MAX_TOOLS - 1}"]


def test_calls_over_stdio_and_http(servers):
    tests, remote = servers["tests"], servers["remote"]
    assert tests.server.status()["state"] == "connected" and remote.server.status()["state"] == "connected"
    assert {t["name"] for t in tests.namespace()["tools"]} >= {"add", "fail", "hang", "huge", "picture"}
    assert tests.run("add", '{"a": 2, "b": 3}', ctx()).text == "5"
    assert remote.run("add", '{"a": 40, "b": 2}', ctx()).text == "42"  # streamable HTTP, with its headers
    failed = tests.run("fail", "{}", ctx())
    assert failed.status == "error" and "always fails" in failed.text
    picture = tests.run("picture", "{}", ctx())
    assert picture.status == "ok" and picture.text.startswith("[image: image/png") and "iVBOR" not in picture.text
    unknown = tests.run("nope", "{}", ctx())
    assert unknown.status == "error" and "has no tool 'nope'" in unknown.text
    assert tests.run("add", "not json", ctx()).status == "error"


def test_limits_of_every_tool_apply(servers):
    tests = servers["tests"]
    t0 = time.monotonic()
    hung = tests.run("hang", "{}", ctx())
    assert hung.status == "timeout" and "did not answer within 3 s" in hung.text and time.monotonic() - t0 < 30
    session = Toolbox({"tests": tests}).session(["tests"])
    huge = session.run("tests.huge", "{}", ctx())
    assert len(huge.text) < MAX_RESULT_CHARS + 100 and "[cut: 1,000,000 characters in all]" in huge.text
    stop = ctx()
    threading.Timer(0.5, stop.cancel.set).start()
    stopped = tests.run("hang", "{}", stop)
    assert stopped.status == "stopped"
    assert tests.run("add", '{"a": 1, "b": 1}', ctx()).text == "2"  # the server serves on


def test_a_server_runs_with_its_own_environment_not_the_apps(servers):
    seen = servers["tests"].run("whoami", "{}", ctx()).text.split()
    assert "SERVER_SETTING" in seen and "GPT_OSS_CHAT_TEST_SECRET" not in seen and "PATH" in seen


def test_a_server_that_crashes_is_started_again(servers):
    tests = servers["tests"]
    assert tests.run("crash", "{}", ctx()).status == "error"
    deadline = time.monotonic() + 60
    while tests.server.status()["state"] != "connected" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tests.run("add", '{"a": 2, "b": 2}', ctx()).text == "4" and tests.server.status()["restarts"] >= 1


def test_a_stdio_server_dies_with_the_app(tmp_path):
    """The app's process killed (-9): its stdio servers go too (PR_SET_PDEATHSIG through the launcher)."""
    config = write_config(tmp_path, {"tests": TESTS_SERVER})
    script = ("import sys, time; sys.path.insert(0, %r)\n"
              "from backend.tools.mcp import start_servers\n"
              "tools = start_servers(%r, 5)\n"
              "print(tools[0].server.status()['state'], flush=True)\n"
              "time.sleep(600)\n") % (str(ROOT), config)
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert app.stdout.readline().strip() == "connected"
    children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == app.pid]
    assert children
    app.kill()
    app.wait()
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in children)


def _parent(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _alive(proc: Path) -> bool:
    try:
        return (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_agent_loop_calls_a_server_and_reads_its_result(repo, make_host, servers):
    """The real published server through the turn: the call is in the prompt, its result in the next one."""
    host = make_host(mcp_call("time.get_current_time", '{"timezone": "UTC"}'), answer("It is late."))
    worker, requests = host.worker(), []
    real = worker.submit
    worker.submit = lambda request: requests.append(request) or real(request)
    service = ChatService(repo, host, toolbox=Toolbox({"time": servers["time"]}, defaults=["time"]))
    snaps = list(service.send("alice", None, "What time is it?", ChatOptions(max_new_tokens=300, tools=["time"])))
    message = service.repo.get("alice", snaps[0].conversation_id).messages[-1]
    call, result = message.trace[1], message.trace[2]
    assert (call.kind, call.recipient) == ("tool_call", "time.get_current_time")
    assert result.status == "ok" and '"timezone": "UTC"' in result.output and message.content == "It is late."
    first = host.codec.encoding.decode(host.codec.render(requests[0].turns, requests[0].settings))
    assert "namespace time {" in first and "get_current_time" in first  # offered in the developer message
    second = host.codec.encoding.decode(host.codec.render(requests[1].turns, requests[1].settings))
    assert "<|start|>time.get_current_time to=assistant<|channel|>commentary<|message|>{" in second


def test_the_admin_view_shows_each_server(servers):
    box = Toolbox(dict(servers))
    states = {s["server"]: s for s in box.servers()}
    assert states["time"]["state"] == "connected" and states["time"]["tools"] == 2
    assert states["remote"]["transport"] == "http" and box.defaults == ["tests", "time", "remote"]


def test_a_server_that_cannot_start_says_why(tmp_path):
    config = write_config(tmp_path, {"broken": {"command": "/nonexistent/server"}})
    [tool] = start_servers(config, timeout_s=3)
    try:
        assert tool.server.status()["state"] == "failed" and "nonexistent" in tool.server.status()["problem"]
        assert "not connected" in tool.unavailable()
        out = tool.run("anything", "{}", ctx())
        assert out.status == "error" and "not connected" in out.text
    finally:
        tool.server.close()


def test_the_page_shows_the_servers_call_in_the_trace(browser, tmp_path, launched):
    """Chromium: the server's tools are offered under "Tools the model may use" and the call shows as
    "Called time.get_current_time · …" with its result."""
    from core.config import Config
    from testkit.page import STEP_TITLE, open_page, send, shot, thought_titles, wait_answers

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, tools="calculate",
                    mcp_config=write_config(tmp_path, {"time": TIME_SERVER}), tool_timeout_s=10)
    parts = launched(config, text=mcp_call("time.get_current_time", '{"timezone": "UTC"}'),
                     then=(answer("It is **late**."),))
    try:
        pg = open_page(browser, f"http://127.0.0.1:{config.port}/", height=1000)
        assert "time" in pg.locator("#tools").inner_text()
        send(pg, "What time is it?")
        wait_answers(pg, 1)
        titles = thought_titles(pg)
        assert any(t.startswith("Called time.get_current_time ·") for t in titles), titles
        pg.locator(f"#chat {STEP_TITLE}", has_text="Called time.get_current_time").click()
        pg.wait_for_function("() => document.querySelector('#chat').innerText.includes('day_of_week')")
        shot(pg, "mcp-trace")
        pg.context.close()
    finally:
        parts.service.toolbox.close()


@pytest.fixture
def api_with_time(tmp_path, launched):
    """The app with mcp-server-time configured, the forced model calling it once, then answering."""
    from core.config import Config

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, tool_timeout_s=10,
                    mcp_config=write_config(tmp_path, {"time": TIME_SERVER}))
    call = mcp_call("time.get_current_time", '{"timezone": "UTC"}')
    parts = launched(config, text=call, then=(answer("It is late."), call, answer("It is late."), call,
                                              answer("It is late.")))  # three requests, each a call and an answer
    import openai

    yield parts, openai.OpenAI(base_url=f"http://127.0.0.1:{config.port}/v1", api_key="EMPTY", max_retries=0,
                               timeout=120)
    parts.service.toolbox.close()


TIME_TOOL = {"type": "mcp", "server_label": "time", "require_approval": "never"}


def test_the_responses_api_runs_the_deployments_server_and_shows_the_call(api_with_time):
    """OpenAI's own `mcp` tool shape, naming one of the deployment's servers: run here, between
    generations; the response lists the server's tools and the call with its output."""
    parts, client = api_with_time
    r = client.responses.create(model="", input="What time is it?", tools=[TIME_TOOL])
    kinds = [item.type for item in r.output]
    assert kinds[0] == "mcp_list_tools" and "mcp_call" in kinds and r.output_text == "It is late."
    listed = r.output[0]
    assert listed.server_label == "time" and {t.name for t in listed.tools} == {"get_current_time", "convert_time"}
    call = next(item for item in r.output if item.type == "mcp_call")
    assert (call.server_label, call.name, json.loads(call.arguments)) == ("time", "get_current_time",
                                                                          {"timezone": "UTC"})
    assert '"timezone": "UTC"' in call.output and call.error is None
    events = [e.type for e in client.responses.create(model="", input="And now?", tools=[TIME_TOOL], stream=True)]
    for kind in ("response.mcp_list_tools.completed", "response.mcp_call_arguments.done",
                 "response.mcp_call.completed", "response.completed"):
        assert kind in events, (kind, events)
    # a client that keeps its own history sends the call back; the model reads it as harmony had it
    again = client.responses.create(model="", tools=[TIME_TOOL], store=False,
                                    input=[{"role": "user", "content": "What time is it?"},
                                           *[item.model_dump(exclude_none=True) for item in r.output],
                                           {"role": "user", "content": "Thanks"}])
    assert again.status == "completed"


def test_chat_completions_runs_the_server_too(api_with_time):
    parts, client = api_with_time
    r = client.chat.completions.create(model="", messages=[{"role": "user", "content": "What time is it?"}],
                                       tools=[TIME_TOOL], store=True)
    assert r.choices[0].message.content == "It is late." and r.choices[0].finish_reason == "stop"
    assert not r.choices[0].message.tool_calls  # run here, not handed to the client
    [conv] = parts.conversations.list("local")
    stored = parts.conversations.open("local", conv.id).messages[-1]
    assert [s.kind for s in stored.trace][:3] == ["reasoning", "tool_call", "tool_result"]
    ran = [e for e in parts.oversight.audit.store.entries() if e.action == "tool_call"]
    assert [(e.outcome, e.detail["tool"]) for e in ran] == [("ok", "time.get_current_time")]


@pytest.mark.parametrize("tool, said", [
    ({"type": "mcp", "server_label": "nope"}, "no MCP server 'nope'; its MCP servers: time"),
    ({"type": "mcp", "server_label": "time", "server_url": "https://evil.example/mcp"}, "only the MCP servers"),
    ({"type": "mcp", "server_label": "time", "require_approval": "always"}, "without approval requests"),
    ({"type": "mcp", "server_label": "time", "allowed_tools": ["x"]}, "not allowed_tools"),
    ({"type": "mcp", "server_label": "python"}, "no MCP server 'python'"),
])
def test_what_an_mcp_tool_may_ask_is_checked(api_with_time, tool, said):
    import openai

    _, client = api_with_time
    with pytest.raises(openai.BadRequestError, match=said):
        client.responses.create(model="", input="hi", tools=[tool])

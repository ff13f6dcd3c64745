"""The launched app through gradio_client: stream, stop, reopen, refuse strangers' ids."""

import json
import time

import pytest

from testkit.streams import live_value

gradio_client = pytest.importorskip("gradio_client")


def client(url):
    return gradio_client.Client(url, verbose=False)


def send(c, text, conversation_id="", effort="medium", max_new_tokens=400):
    return c.submit(text, conversation_id, effort, "", 1.0, max_new_tokens, api_name="/send")


def titles(chat):
    return [(m.get("metadata") or {}).get("title") for m in chat]


def test_send_streams_reasoning_and_answer_as_separate_messages(app_url):
    url, service = app_url
    c = client(url)
    job = send(c, "hi there", effort="high")
    outputs = list(job)
    chat, _, conversation_id = job.result()
    assert outputs[0][2] == conversation_id and len(conversation_id) == 32
    assert chat[0]["role"] == "user" and chat[0]["content"][0]["text"] == "hi there" if isinstance(
        chat[0]["content"], list) else chat[0]["content"] == "hi there"
    fold, thought, answer, stats = chat[1], chat[2], chat[3], chat[4]  # one answer: its fold, step, text, stats
    assert fold["metadata"]["title"].startswith("Thought for") and fold["metadata"]["status"] == "done"
    assert thought["metadata"]["parent_id"] == fold["metadata"]["id"] and thought["metadata"]["status"] == "done"
    assert "Let me think" in str(thought["content"])
    assert "Hello!" in str(answer["content"]) and not answer.get("metadata", {}).get("title")
    assert "&lt;b&gt;How&lt;/b&gt;" in str(answer["content"])  # HTML from the model is shown as text
    assert "high effort" in str(stats["content"]) and "tokens/s" in str(stats["content"])
    pending = [o for o in outputs if live_value(o) and (live_value(o)[-1].get("metadata") or {}).get("status") == "pending"]
    assert pending, "the reasoning panel streamed open (pending) before the answer"


def test_stop_mid_stream_keeps_the_partial_answer_and_reopens(app_url):
    url, service = app_url
    c = client(url)
    job = send(c, "tell me everything")
    conversation_id = None
    deadline = time.time() + 60
    while time.time() < deadline and not conversation_id:  # stop once some reasoning has been written
        outs = job.outputs()
        if outs and isinstance(outs[-1][2], str) and outs[-1][2] and any(m.get("content") for m in outs[-1][1]):
            conversation_id = outs[-1][2]
        time.sleep(0.05)
    c.predict(conversation_id, api_name="/stop")
    chat = job.result()[0]
    assert "stopped" in str(chat[-1]["content"])  # the answer's stats line
    reopened = client(url).predict(conversation_id, api_name="/open_conversation")
    assert [m["role"] for m in reopened["messages"]] == ["user", "assistant"]
    assert reopened["messages"][1]["status"] == "stopped" and reopened["messages"][1]["reasoning"]
    stored = service.repo.get("local", conversation_id).messages[1]
    assert stored.status == "stopped" and stored.reasoning


def test_unknown_conversation_is_not_found(app_url):
    url, _ = app_url
    with pytest.raises(Exception, match="does not exist"):
        client(url).predict("0" * 32, api_name="/open_conversation")


def test_sidebar_search_rename_export_delete(app_url):
    url, _ = app_url
    c = client(url)
    conversation_id = send(c, "the zebra question").result()[2]
    hits = c.predict("zebra", False, api_name="/search")
    assert conversation_id in str(hits)
    c.predict(conversation_id, "Zebras", api_name="/rename")
    assert "# Zebras" in c.predict(conversation_id, api_name="/export_markdown")  # the text, no stored file
    assert json.loads(c.predict(conversation_id, api_name="/export_json"))["title"] == "Zebras"
    c.predict(conversation_id, api_name="/delete")
    with pytest.raises(Exception, match="does not exist"):
        c.predict(conversation_id, api_name="/open_conversation")


def conversation_of(job, timeout=60) -> str:
    """The conversation id a /send stream reports in its first updates."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for out in job.outputs():
            if isinstance(out[2], str) and out[2]:
                return out[2]
        if job.done() and not job.outputs():
            raise AssertionError(f"the stream ended without a conversation: {job.exception()!r}")
        time.sleep(0.02)
    raise TimeoutError("no conversation id came back")


def wait_done(service, cid, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        messages = service.repo.get("local", cid).messages
        if messages[-1].status != "streaming":
            return messages[-1]
        time.sleep(0.05)
    raise TimeoutError("the answer is still streaming")


def test_a_client_that_disconnects_does_not_cancel_the_answer(app_url):
    url, service = app_url
    c = client(url)
    job = send(c, "answer me even if I leave")
    cid = conversation_of(job)
    job.cancel()  # the client goes away mid-stream
    c.close()
    answer = wait_done(service, cid)
    assert answer.status == "complete" and answer.content == "Hello! <b>How</b> can I help?"


def test_attach_follows_an_answer_in_progress_to_its_end(app_url):
    url, service = app_url
    sender = client(url)
    job = send(sender, "I will come back for this")
    cid = conversation_of(job)
    job.cancel()
    outputs = list(client(url).submit(cid, api_name="/attach"))  # another client re-attaches
    final_chat = outputs[-1][0]
    assert any("can I help?" in str(m.get("content")) for m in final_chat)
    assert wait_done(service, cid).status == "complete"
    done = client(url).predict(cid, api_name="/attach")  # nothing in progress: the stored chat at once
    assert any("can I help?" in str(m.get("content")) for m in done[0])


def test_ten_streams_and_two_cancels_leave_nothing_wedged(tmp_path, launched):
    """The probe of the hardening issue: 10 /send streams in one client session, two cancelled.
    (The worker has room for all ten: 4 decoding, 8 waiting.)"""
    from core.config import Config
    from testkit.net import free_port

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, max_active=4, max_waiting=8)
    service = launched(config).service
    url = f"http://127.0.0.1:{config.port}/"
    c = client(url)
    jobs = [send(c, f"question {i}") for i in range(10)]
    conversation_of(jobs[0])
    conversation_of(jobs[1])
    jobs[0].cancel()
    time.sleep(0.5)
    jobs[1].cancel()  # whatever this does to the session's other streams, every turn must end by itself
    worker, deadline = service.host.worker(), time.time() + 180
    while time.time() < deadline:
        convs = service.repo.list_conversations("local")
        statuses = [service.repo.get("local", conv.id).messages[-1].status for conv in convs]
        if "streaming" not in statuses and worker.active == 0 and worker.waiting == 0:
            break
        time.sleep(0.2)
    assert len(convs) >= 2 and statuses == ["complete"] * len(convs), statuses
    assert worker.active == 0 and worker.waiting == 0  # every slot given back
    fresh = client(url)
    again = [send(fresh, "one more", conversation_id=conv.id) for conv in convs]
    assert [job.result(timeout=180)[2] for job in again] == [conv.id for conv in convs]  # all take messages


def test_edit_is_page_only_and_not_offered_to_the_api(app_url):
    url, _ = app_url
    c = client(url)
    assert "/edit" not in c.view_api(print_info=False, return_format="dict")["named_endpoints"]
    with pytest.raises(Exception):
        c.predict("0" * 32, "medium", "", 1.0, 400, api_name="/edit")


def test_a_full_server_refuses_at_once_instead_of_parking_requests(tmp_path, launched):
    from core.config import Config
    from testkit.net import free_port

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, max_active=1, max_waiting=1)
    launched(config)
    url = f"http://127.0.0.1:{config.port}/"
    jobs = [send(client(url), f"crowd {i}") for i in range(8)]
    outcomes = []
    for job in jobs:
        try:
            job.result(timeout=180)
            outcomes.append("answered")
        except Exception as exc:  # noqa: BLE001 - the refusal is what is being checked
            outcomes.append(str(exc))
    refused = [o for o in outcomes if o != "answered"]
    assert refused and all("busy" in o.lower() or "full" in o.lower() for o in refused), outcomes
    assert "answered" in outcomes


def test_hide_api_leaves_no_route_listing(tmp_path, launched):
    import httpx

    from core.config import Config
    from testkit.net import free_port

    config = Config(data_dir=str(tmp_path), port=free_port(), hide_api=True)
    launched(config)
    for path in ("openapi.json", "docs"):
        assert httpx.get(f"http://127.0.0.1:{config.port}/{path}").status_code == 404


def test_the_idle_queue_looks_for_events_calmly_and_still_streams(tmp_path, launched):
    """Gradio's queue loop polls every 1 ms when it has nothing to do (2.2 % of a core with nobody on
    the page); the app slows it to QUEUE_IDLE_POLL_S. The attributes are Gradio's own: this fails if an
    upgrade renames them (the setting would then silently do nothing). A queued stream still runs."""
    from core.config import Config
    from testkit.net import free_port
    from ui.runtime import PROGRESS_POLL_S, QUEUE_IDLE_POLL_S

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400)
    parts = launched(config)
    queue = parts.demo._queue
    assert (queue.sleep_when_free, queue.progress_update_sleep_when_free) == (QUEUE_IDLE_POLL_S, PROGRESS_POLL_S)
    job = send(client(f"http://127.0.0.1:{config.port}/"), "hi", effort="low")
    assert "Hello!" in json.dumps(job.result()[0])


def test_launch_freezes_what_start_up_built_out_of_the_collector(tmp_path, launched):
    """What exists at launch lives as long as the process; frozen, full collections skip it (a
    collection in the middle of many chats starting at once cost ~0.25 s, see app.launch)."""
    import gc

    from core.config import Config
    from testkit.net import free_port

    gc.unfreeze()  # whatever an earlier test's launch froze
    launched(Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400))
    assert gc.get_freeze_count() > 10_000  # Gradio's blocks, the services, the imported modules


WEATHER = [{"name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def test_tools_through_the_api_and_a_function_result_sent_by_a_script(tmp_path, launched):
    from core.config import Config
    from testkit.net import free_port

    call = ("<|channel|>analysis<|message|>Ask the function.<|end|><|start|>assistant to=functions.get_weather"
            '<|channel|>commentary <|constrain|>json<|message|>{"city": "Oslo"}<|call|>')
    done = "<|channel|>analysis<|message|>Sunny.<|end|><|start|>assistant<|channel|>final<|message|>Sunny.<|return|>"
    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=200, tools="calculate")
    service = launched(config, text=call, then=(done,)).service
    c = client(f"http://127.0.0.1:{config.port}/")
    chat, _, cid = c.submit("Weather?", "", "low", "", 1.0, 200, ["calculate"], json.dumps(WEATHER),
                            api_name="/send").result()
    assert titles(chat)[3] == "Called get_weather · waiting for its result"  # after the fold and a thought
    assert service.repo.get("local", cid).settings["tools"] == ["calculate"]
    chat, _, same = c.submit(cid, '{"sky": "clear"}', "low", "", 1.0, 200, ["calculate"], json.dumps(WEATHER),
                             api_name="/tool_result").result()
    assert same == cid and titles(chat)[3] == "Called get_weather · your result"
    assert "Sunny." in json.dumps(chat)
    with pytest.raises(Exception, match="not in the list of choices"):  # Gradio checks the choices itself
        c.submit("x", "", "low", "", 1.0, 50, ["python"], "", api_name="/send").result()


def test_the_page_start_checks_raw_values_itself(app_url):
    """The page's start skips Gradio's input processing (preprocess=False), so the values arrive as the
    browser sent them: a value no control offers is refused by the chat service with its own sentence,
    and nothing is stored."""
    import asyncio

    import httpx

    from bench.gradio_load import Tab
    from ui.identity import LOCAL_OWNER

    url, service = app_url

    async def press_enter(**values) -> list[str]:
        async with httpx.AsyncClient(timeout=60) as http:
            tab = Tab(http, url, (await http.get(url + "config")).json())
            tab.values[tab.by_elem["message"]] = "hello"
            for label, value in values.items():
                tab.values[tab.by_label[label]] = value
            await tab.run(tab.dep_for("message", "submit"), trigger=tab.by_elem["message"])
            return tab.errors

    errors = asyncio.run(press_enter(**{"Reasoning effort": "extreme"}))
    assert errors and "Reasoning effort must be one of" in errors[0] and "Traceback" not in errors[0]
    errors = asyncio.run(press_enter(**{"Tools the model may use": ["shell"]}))
    assert errors and "has no tool 'shell'" in errors[0]
    errors = asyncio.run(press_enter(**{"Temperature": "hot"}))
    assert errors and "Temperature" in errors[0]
    assert service.repo.list_titles(LOCAL_OWNER) == []


@pytest.fixture
def synthetic_url(tmp_path, codec):
    """The app on bench/synthetic.py's engine: many answers at once (the forced tiny model drives one at a
    time; a comparison is three)."""
    from tests.support.apps import synthetic_app

    config, app = synthetic_app(tmp_path, codec.encoding, rate=400.0)
    with app:
        yield f"http://127.0.0.1:{config.port}/"


def test_compare_answers_at_each_effort_then_keep_one(synthetic_url):
    c = client(synthetic_url)
    compared = c.predict("Compare me", "", "", 1.0, 400, api_name="/compare")
    cid, answers = compared["conversation_id"], compared["answers"]
    assert [a["effort"] for a in answers] == ["low", "medium", "high"]
    assert all(a["status"] == "complete" and a["reasoning"] and a["content"] and not a["malformed"] for a in answers)
    assert len({a["id"] for a in answers}) == 3 and len({a["parent_id"] for a in answers}) == 1  # siblings
    with pytest.raises(Exception, match="Keep one of the compared answers first"):
        send(c, "And then?", cid).result()
    again = c.predict("", cid, "", 1.0, 400, api_name="/compare")  # no text: the same question again
    assert again["conversation_id"] == cid and {a["parent_id"] for a in again["answers"]} == {answers[0]["parent_id"]}
    c.predict(cid, "high", api_name="/keep")
    opened = c.predict(cid, api_name="/open_conversation")
    assert opened["shown"][-1] == again["answers"][2]["id"]  # the branch shown ends in the high answer kept
    assert send(c, "And then?", cid).result()[2] == cid  # decided: the conversation goes on
    with pytest.raises(Exception, match="no comparison to keep"):
        c.predict(cid, "low", api_name="/keep")

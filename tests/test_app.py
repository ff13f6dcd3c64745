"""The launched app through gradio_client: stream, stop, reopen, refuse strangers' ids."""

import time

import pytest

from tests.support.streams import live_value

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
    chat, _, conversation_id, _ = job.result()
    assert outputs[0][3] == "" and len(conversation_id) == 32
    assert chat[0]["role"] == "user" and chat[0]["content"][0]["text"] == "hi there" if isinstance(
        chat[0]["content"], list) else chat[0]["content"] == "hi there"
    thought, answer, stats = chat[1], chat[2], chat[3]
    assert thought["metadata"]["title"].startswith("Thought for") and thought["metadata"]["status"] == "done"
    assert "Let me think" in str(thought["content"])
    assert "Hello!" in str(answer["content"]) and not answer.get("metadata", {}).get("title")
    assert "&lt;b&gt;How&lt;/b&gt;" in str(answer["content"])  # HTML from the model is shown as text
    assert "high effort" in stats["metadata"]["title"] and "tokens/s" in stats["metadata"]["title"]
    pending = [o for o in outputs if live_value(o) and (live_value(o)[-1].get("metadata") or {}).get("status") == "pending"]
    assert pending, "the reasoning panel streamed open (pending) before the answer"


def test_stop_mid_stream_keeps_the_partial_answer_and_reopens(app_url):
    url, service = app_url
    c = client(url)
    job = send(c, "tell me everything")
    conversation_id = None
    deadline = time.time() + 60
    while time.time() < deadline and not conversation_id:
        outs = job.outputs()
        if outs and isinstance(outs[0][2], str) and outs[0][2]:
            conversation_id = outs[0][2]
        time.sleep(0.05)
    c.predict(conversation_id, api_name="/stop")
    chat = job.result()[0]
    assert "stopped" in titles(chat)[-1]
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
    path = c.predict(conversation_id, api_name="/export_markdown")
    assert "# Zebras" in open(path if isinstance(path, str) else path["value"], encoding="utf-8").read()
    c.predict(conversation_id, api_name="/delete")
    with pytest.raises(Exception, match="does not exist"):
        c.predict(conversation_id, api_name="/open_conversation")

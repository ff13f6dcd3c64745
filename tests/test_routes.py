"""/healthz and the share-link pages, over HTTP against the launched app."""

import json
import urllib.error
import urllib.request

import pytest

from core.errors import LINK_GONE as GONE
from core.records import MessageView, SharedConversation
from core.trace import from_json
from ui.shared_page import render_gone, render_shared

gradio_client = pytest.importorskip("gradio_client")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_healthz(app_url):
    status, _, body = get(app_url[0] + "healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "model": "ready", "restarts": 0}


def test_share_page_read_only_then_revoked(app_url):
    url, _ = app_url
    c = gradio_client.Client(url, verbose=False)
    cid = c.submit("What is <script>alert(1)</script>?", "", "medium", "", 1.0, 400, api_name="/send").result()[2]
    link = c.predict(cid, "1 day", False, api_name="/create_share")[0]
    token = link.rsplit("/", 1)[1]
    status, headers, page = get(url + link)
    assert status == 200 and "script-src" not in headers["content-security-policy"]  # default-src 'none'
    assert "default-src 'none'" in headers["content-security-policy"] and headers["cache-control"] == "no-store"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "Hello!" in page and "Let me think" not in page  # reasoning left out by default
    assert f'href="../?copy={token}"' in page
    with_reasoning = c.predict(cid, "never", True, api_name="/create_share")[0]
    assert "Let me think" in get(url + with_reasoning)[2] and "<details" in get(url + with_reasoning)[2]
    active = c.predict(api_name="/list_shares")
    assert {s["token"] for s in active} == {token, with_reasoning.rsplit("/", 1)[1]}
    c.predict(token, api_name="/revoke_share")
    status, _, page = get(url + link)
    assert status == 404 and GONE in page and "Hello!" not in page
    assert get(url + "s/" + "A" * 32)[0] == 404  # a made-up token
    assert [s["token"] for s in c.predict(api_name="/list_shares")] == [with_reasoning.rsplit("/", 1)[1]]


def test_copy_a_shared_chat_into_a_new_one(app_url):
    url, service = app_url
    c = gradio_client.Client(url, verbose=False)
    cid = c.submit("copy me", "", "medium", "", 1.0, 400, api_name="/send").result()[2]
    token = c.predict(cid, "1 hour", False, api_name="/create_share")[0].rsplit("/", 1)[1]
    new = c.predict(token, api_name="/copy_shared")
    copied = c.predict(new, api_name="/open_conversation")
    assert new != cid and [m["role"] for m in copied["messages"]] == ["user", "assistant"]
    assert copied["messages"][1]["content"].startswith("Hello!") and copied["messages"][1]["reasoning"] == ""


def test_shared_page_renders_markdown_and_keeps_html_as_text():
    answer = MessageView(id=1, position=1, role="assistant", content="**bold** <img src=x onerror=alert(1)>",
                         reasoning="secret <b>plan</b>", reasoning_time=3.2, effort="high", status="stopped")
    shared = SharedConversation("T <i>", "2026-01-01", True, [MessageView(0, 0, "user", "[x](javascript:alert(1))"),
                                                             answer])
    page = render_shared(shared, "../?copy=abc")
    assert "<strong>bold</strong>" in page and "<img" not in page and "href=\"javascript" not in page
    assert "Thought for 3.2 s" in page and "secret &lt;b&gt;plan&lt;/b&gt;" in page and "T &lt;i&gt;" in page
    assert "stopped by the user" in page and "high effort" in page
    assert "secret" not in render_shared(SharedConversation("T", "", False, [answer]), "x")
    assert GONE in render_gone()
    call = MessageView(id=2, position=2, role="assistant", content="", status="complete",
                       trace=from_json([{"kind": "preamble", "text": "Checking the weather."},
                                        {"kind": "tool_call", "recipient": "functions.get_weather",
                                         "arguments": '{"city": "<Paris>"}'}]))
    page = render_shared(SharedConversation("T", "", False, [call]), "x")
    assert "Checking the weather." in page and "Called get_weather" in page and "&lt;Paris&gt;" in page

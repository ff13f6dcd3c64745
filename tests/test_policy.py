"""The reasoning display policy: raw, summary, hidden, end to end on the forced tiny model (page
stream, reopened conversation, API, share link, exports, search) and in Chromium."""

import json

import httpx
import pytest
from gradio_client import Client

from backend.services.policy import ReasoningPolicy
from core.config import Config
from core.records import MessageView
from core.steps import display_steps
from core.trace import from_json
from storage.exports import message_data
from testkit.net import free_port
from tests.conftest import FORCED_CHAT

openai = pytest.importorskip("openai")
RAW = "Let me think"  # in the forced reasoning (conftest.FORCED_CHAT), never in the summary
SUMMARY = ("<|channel|>analysis<|message|>Short.<|end|><|start|>assistant<|channel|>final<|message|>"
           "It weighed how to greet the user.<|return|>")


def message(**kw) -> MessageView:
    trace = from_json([{"kind": "reasoning", "start": 0, "end": 12, "seconds": 1.5, "tokens": 30},
             {"kind": "tool_call", "recipient": "python", "arguments": "print(1)"},
             {"kind": "tool_result", "recipient": "python", "output": "1", "status": "ok", "seconds": 0.1},
             {"kind": "reasoning", "start": 14, "end": 25, "seconds": 0.5, "tokens": 10}])
    fields = dict(id=1, position=1, role="assistant", content="1", reasoning="first think\n\nsecond one",
                  trace=trace, reasoning_tokens=40, reasoning_time=2.0,
                  harmony=[{"role": "assistant", "channel": "analysis", "content": [{"text": "first think"}]},
                           {"role": "assistant", "channel": "final", "content": [{"text": "1"}]}])
    return MessageView(**{**fields, **kw})


def test_hidden_keeps_each_steps_place_and_figures_but_no_text():
    shown = ReasoningPolicy("hidden").view(message())
    assert shown.reasoning == "" and [h["channel"] for h in shown.harmony] == ["final"]
    titles = [s.title for s in display_steps(shown)]
    assert titles == ["Reasoning hidden by this deployment · 30 tokens · 1.5 s", "Ran python · 0.1 s",
                      "Reasoning hidden by this deployment · 10 tokens · 0.5 s"]
    assert "think" not in json.dumps(message_data(shown))


def test_summary_stands_where_the_reasoning_began():
    shown = ReasoningPolicy("summary").view(message(reasoning_summary="It ran python."))
    steps = display_steps(shown)
    assert [s.title for s in steps] == ["Summary of the reasoning · 40 tokens · 2.0 s", "Ran python · 0.1 s"]
    assert steps[0].text == "It ran python." and "think" not in json.dumps(message_data(shown))
    writing = display_steps(ReasoningPolicy("summary").view(message(), writing=True), streaming=True)
    assert writing[0].title == "Thinking… · a summary follows the answer" and writing[0].pending


def test_raw_is_untouched_and_drop_stores_nothing():
    m = message()
    assert ReasoningPolicy("raw").view(m) is m
    drop = ReasoningPolicy("hidden", "drop")
    assert drop.stored("secret") == "" and [h["channel"] for h in drop.stored_harmony(m.harmony)] == ["final"]
    assert ReasoningPolicy("hidden").stored("secret") == "secret"


def start(launched, tmp_path, display, then=(), **settings):
    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, reasoning_display=display,
                    **settings)
    parts = launched(config, then=then)
    return parts, f"http://127.0.0.1:{config.port}"


def page_turn(url: str):
    job = Client(url + "/", verbose=False).submit("hi", "", "medium", "", 1.0, 400, api_name="/send")
    outputs = list(job)
    return job.result(), json.dumps(outputs, default=str, ensure_ascii=False)


def leaks(parts, url, cid: str) -> str:
    """Everything a user can get of the conversation: reopened, exported, shared with reasoning, the API."""
    c = Client(url + "/", verbose=False)
    opened = json.dumps(c.predict(cid, api_name="/open_conversation"))
    exports = "".join(httpx.get(f"{url}/export/{cid}/{kind}").text for kind in ("json", "markdown"))
    link = parts.sharing.create("local", cid, "1 day", True)
    shared = httpx.get(f"{url}/s/{link.token}").text
    found = json.dumps(parts.conversations.search("local", "think", True))
    return opened + exports + shared + found


def test_hidden_end_to_end(launched, tmp_path):
    parts, url = start(launched, tmp_path, "hidden")
    (chat, _, cid), streamed = page_turn(url)
    assert RAW not in streamed  # not in one streamed update
    assert chat[1]["metadata"]["title"].startswith("Thought for ")  # the answer's fold; its steps follow
    assert chat[2]["metadata"]["title"].startswith("Reasoning hidden by this deployment · ")
    assert " tokens · " in chat[2]["metadata"]["title"] and "Hello!" in str(chat[3]["content"])
    assert RAW not in leaks(parts, url, cid)
    assert RAW in parts.service.repo.get("local", cid).messages[1].reasoning  # kept on the server (keep)
    api = openai.OpenAI(base_url=url + "/v1", api_key="EMPTY")
    r = api.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "hi"}])
    assert "reasoning_content" not in (r.choices[0].message.model_extra or {})
    assert r.usage.completion_tokens_details.reasoning_tokens > 50  # how much, never what
    stream = api.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert RAW not in json.dumps([c.model_dump() for c in stream])


def test_hidden_and_dropped_is_never_stored(launched, tmp_path):
    parts, url = start(launched, tmp_path, "hidden", hidden_reasoning="drop")
    (chat, _, cid), _ = page_turn(url)
    stored = parts.service.repo.get("local", cid).messages[1]
    assert stored.reasoning == "" and stored.reasoning_tokens > 50
    assert all(h.get("channel") != "analysis" for h in stored.harmony)
    assert chat[2]["metadata"]["title"].startswith("Reasoning hidden by this deployment")


def test_summary_end_to_end(launched, tmp_path):
    parts, url = start(launched, tmp_path, "summary", then=(SUMMARY, FORCED_CHAT, SUMMARY))  # page, then API
    (chat, _, cid), streamed = page_turn(url)
    assert RAW not in streamed and "Thinking… · a summary follows the answer" in streamed
    assert chat[2]["metadata"]["title"].startswith("Summary of the reasoning · ")
    assert "It weighed how to greet the user." in str(chat[2]["content"]) and "Hello!" in str(chat[3]["content"])
    stored = parts.service.repo.get("local", cid).messages[1]
    assert RAW in stored.reasoning and stored.reasoning_summary == "It weighed how to greet the user."
    everything = leaks(parts, url, cid)
    assert RAW not in everything and "It weighed how to greet the user." in everything
    r = openai.OpenAI(base_url=url + "/v1", api_key="EMPTY").chat.completions.create(
        model="tiny-test", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Hello! <b>How</b> can I help?"
    assert r.choices[0].message.model_extra["reasoning_content"] == "It weighed how to greet the user."


def test_policies_in_chromium(browser, launched, tmp_path):
    from testkit.page import STEP_TITLE, open_page, send, shot, step_titles, wait_answers

    for display in ("hidden", "summary"):
        _, url = start(launched, tmp_path / display, display, then=(SUMMARY,))
        pg = open_page(browser, url + "/")
        send(pg, "hi")
        wait_answers(pg, 1)
        pg.wait_for_function("() => document.querySelector('#chat').innerText.includes('How')")
        shot(pg, f"reasoning-{display}")
        title = step_titles(pg)[0]
        pg.locator(f"#chat {STEP_TITLE}").first.click()  # open the panel
        body = pg.locator("#chat").inner_text()
        assert RAW not in body and RAW not in pg.content()
        if display == "hidden":
            assert title.startswith("Reasoning hidden by this deployment · ") and "tokens" in title
        else:
            assert title.startswith("Summary of the reasoning")
            pg.wait_for_function("() => document.querySelector('#chat').innerText.includes('weighed how to greet')")
        assert pg.locator("#share-reasoning").count() == (0 if display == "hidden" else 1) or \
            not pg.locator("#share-reasoning").is_visible()
        pg.context.close()

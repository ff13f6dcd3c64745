"""ui/relay.py: the page's relays stream the live panel alone, and `settle` shows the chat afterwards.

A streamed update that carries the whole chat costs Gradio work in proportion to the conversation
(bench/ui_stream.py measured it), so the page's relays must never output the chat; `settle` then paints
it once per turn, from what the relay saw at the end, or from storage after a cancel. The chat service,
the conversations and the identity are small fakes here (the seams the relay is given); the launched
page is checked in Chromium by tests/test_browser*.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import anyio
import gradio as gr

from backend.serving.live import Snapshot
from core.records import ConversationView, MessageStatus, MessageView
from ui import relay as relay_module
from ui.relay import Relay


class Chat:
    def __init__(self):
        self.writing_now = set()

    def writing(self, owner):
        return self.writing_now


class Conversations:
    def __init__(self, messages):
        self.messages, self.opened = messages, 0

    def open(self, owner, conversation_id):
        self.opened += 1
        return ConversationView(conversation_id, "t", "", "", {}, self.messages)


class Identity:
    def owner_or_none(self, request):
        return "alice"


class FakeWatch:
    def __init__(self, snaps):
        self.snaps, self.closed = list(snaps), False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if not self.snaps:
            raise StopAsyncIteration
        return self.snaps.pop(0)

    def close(self):
        self.closed = True


def page():
    with gr.Blocks():
        return SimpleNamespace(chatbot=gr.Chatbot(), live=gr.Chatbot())


def messages():
    return [MessageView(id=1, position=0, role="user", content="What is 17 + 25?"),
            MessageView(id=2, position=1, role="assistant", content="42", effort="low")]


def request():
    return SimpleNamespace(session_hash="tab-1")


def make(stored=None):
    p, chat, convs = page(), Chat(), Conversations(stored if stored is not None else messages())
    return p, chat, convs, Relay(p, chat, convs, Identity())


def collect(agen):
    async def run():
        return [out async for out in agen]
    return anyio.run(run)


def test_the_page_relay_streams_the_live_panel_alone_and_hands_the_end_over():
    p, chat, convs, relay = make()
    history = messages()
    writing = MessageView(id=4, position=3, role="assistant", content="4", reasoning="add", effort="low",
                          status=MessageStatus.STREAMING)
    ended = MessageView(id=4, position=3, role="assistant", content="43", reasoning="add", effort="low")
    watch = FakeWatch([Snapshot("c1", history, writing), Snapshot("c1", history, ended, done=True)])
    handed = []
    outs = collect(relay.stream(watch, ended=handed.append))
    assert [set(out) for out in outs] == [{p.live}, {p.live}]  # never the chat: its size would cost every update
    assert "43" in str(outs[-1][p.live]) and watch.closed
    assert "43" in [m.content for m in handed[0]]  # the chat as the turn ended, answer included


def test_a_script_relay_carries_the_chat_too():
    p, chat, convs, relay = make()
    ended = MessageView(id=4, position=3, role="assistant", content="43", effort="low")
    outs = collect(relay.stream(FakeWatch([Snapshot("c1", messages(), ended, done=True)]), with_history=True))
    assert set(outs[-1]) == {p.chatbot, p.live} and outs[-1][p.live] == []
    assert "43" in str(outs[-1][p.chatbot])


def test_settle_shows_what_the_relay_saw_end_without_reading_it_back():
    p, chat, convs, relay = make()
    rows = [gr.ChatMessage(role="assistant", content="as it ended")]
    relay._hand_over("tab-1", "c1", rows)
    shown = anyio.run(relay.settle, "c1", request())
    assert shown == {p.chatbot: rows, p.live: []} and convs.opened == 0
    shown = anyio.run(relay.settle, "c1", request())  # handed over once: next time, storage
    assert convs.opened == 1 and "What is 17 + 25?" in str(shown[p.chatbot])


def test_settle_after_a_cancel_reads_the_conversation_shown_now():
    p, chat, convs, relay = make()
    relay._hand_over("tab-1", "old", [gr.ChatMessage(role="assistant", content="the conversation left")])
    shown = anyio.run(relay.settle, "c2", request())
    assert convs.opened == 1 and "the conversation left" not in str(shown[p.chatbot]) and shown[p.live] == []


def test_settle_leaves_a_conversation_being_written_to_its_relay():
    p, chat, convs, relay = make()
    chat.writing_now = {"c1"}
    relay._hand_over("tab-1", "c1", [])
    shown = anyio.run(relay.settle, "c1", request())
    assert shown[p.chatbot] == gr.skip() and shown[p.live] == gr.skip() and convs.opened == 0


def test_settle_does_not_send_again_the_chat_the_page_was_sent():
    """Opening an idle conversation ends its relays at once: their `settle` must not repaint it, or a New
    chat clicked meanwhile would show the old chat again (the browser test's race, seen in CI)."""
    p, chat, convs, relay = make()
    opened = anyio.run(relay.settle, "c1", request())  # first time: sent, and remembered
    assert "What is 17 + 25?" in str(opened[p.chatbot])
    again = anyio.run(relay.settle, "c1", request())
    assert again[p.chatbot] == gr.skip() and again[p.live] == [] and convs.opened == 2
    other_tab = anyio.run(relay.settle, "c1", SimpleNamespace(session_hash="tab-2"))
    assert other_tab[p.chatbot] == opened[p.chatbot]
    convs.messages = convs.messages + [MessageView(id=3, position=2, role="user", content="and 18 + 25?")]
    changed = anyio.run(relay.settle, "c1", request())  # stored since: sent
    assert "and 18 + 25?" in str(changed[p.chatbot])
    relay.painted(request(), "c1", [])  # the page was sent something else (say, by opening it)
    assert "What is 17 + 25?" in str(anyio.run(relay.settle, "c1", request())[p.chatbot])


def test_settle_without_a_conversation_empties_both():
    p, chat, convs, relay = make()
    assert anyio.run(relay.settle, "", request()) == {p.chatbot: [], p.live: []}


def test_turns_whose_page_never_settles_are_not_kept_for_ever(monkeypatch):
    monkeypatch.setattr(relay_module, "ENDED_KEPT", 3)
    p, chat, convs, relay = make()
    for i in range(10):
        relay._hand_over(f"tab-{i}", "c1", [])
    assert list(relay._ended) == [("tab-7", "c1"), ("tab-8", "c1"), ("tab-9", "c1")]


def test_follow_with_nothing_in_progress_empties_the_live_panel():
    p, chat, convs, relay = make()
    chat.attach = lambda owner, cid: None
    assert collect(relay.follow("c1", request())) == [{p.live: []}]


def test_settle_of_a_conversation_the_page_left_for_a_new_chat_paints_nothing():
    p, chat, convs, relay = make()
    relay.leave(request(), "c1")  # New chat: a settle of c1 asked before it may be answered after it
    assert relay.left(request(), "c1") and not relay.left(request(), "c2") and not relay.left(request(), "")
    assert anyio.run(relay.settle, "c1", request()) == {p.chatbot: gr.skip(), p.live: gr.skip()}
    other_tab = anyio.run(relay.settle, "c1", SimpleNamespace(session_hash="tab-2"))
    assert "What is 17 + 25?" in str(other_tab[p.chatbot])
    relay.painted(request(), "c1", [])  # opened again on this page
    assert not relay.left(request(), "c1")
    assert "What is 17 + 25?" in str(anyio.run(relay.settle, "c1", request())[p.chatbot])

"""ui/compare.py and ui/compare_panel.py: the comparison's relay streams the chart and the three columns
(never the chat), `settle` shows a stored comparison or empties the panel, and the chart is drawn from
numbers only. The chat service and the conversations are small fakes at their seams; the launched page
is checked in Chromium by tests/test_browser_compare.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import anyio
import gradio as gr

from backend.services.compare import EffortFigures
from backend.serving.live import Snapshot
from core.records import ConversationView, MessageStatus, MessageView
from ui.compare import CompareView, merged
from ui.compare_panel import build_compare, effort_chart
from ui.relay import Relay


def answer(mid, effort, content="", status=MessageStatus.COMPLETE, **figures) -> MessageView:
    return MessageView(id=mid, position=mid, role="assistant", content=content, effort=effort, status=status,
                       parent_id=1, **figures)


QUESTION = MessageView(id=1, position=0, role="user", content="What is 17 + 25?")


class Turn:
    started_at, answered_at, reasoning_seen = 0.0, None, 5


class SlowWatch:
    """A Watch's surface: snapshots with a pause before each, then the end."""

    def __init__(self, snaps, pause=0.0):
        self.snaps, self.pause, self.closed = list(snaps), pause, False
        self.turn, self.pace = Turn(), SimpleNamespace(interval=lambda: 0.0)

    def __aiter__(self):
        return self

    async def __anext__(self):
        await asyncio.sleep(self.pause)
        if not self.snaps:
            raise StopAsyncIteration
        return self.snaps.pop(0)

    def close(self):
        self.closed = True


class Chat:
    def __init__(self, watches=None):
        self.watches, self.writing_now = watches, set()

    def attach_comparison(self, owner, conversation_id):
        return self.watches

    def writing(self, owner):
        return self.writing_now


class Conversations:
    def __init__(self, compared):
        self.compared = compared

    def open(self, owner, conversation_id):
        return ConversationView(conversation_id, "t", "", "", {}, [QUESTION], compared=self.compared)


def make(watches=None, compared=()):
    with gr.Blocks():
        p = SimpleNamespace(chatbot=gr.Chatbot(), live=gr.Chatbot(), compare=build_compare())
    chat, convs = Chat(watches), Conversations(list(compared))
    identity = SimpleNamespace(owner_or_none=lambda request: "alice")
    relay = Relay(p, chat, convs, identity)
    relay.compare = CompareView(p, chat, convs, relay, sidebar=None)
    return p, relay


def request():
    return SimpleNamespace(session_hash="tab-1")


def collect(agen):
    async def run():
        return [out async for out in agen]
    return anyio.run(run)


def snaps(mid, effort, final):
    writing = answer(mid, effort, "4", MessageStatus.STREAMING, reasoning="adding")
    ended = answer(mid, effort, final, reasoning="adding", reasoning_tokens=mid * 10)
    return [Snapshot("c1", [QUESTION], writing), Snapshot("c1", [QUESTION], ended, done=True)]


def test_the_relay_streams_the_chart_and_the_columns_never_the_chat():
    watches = [SlowWatch(snaps(i + 2, e, f"{e} says 42"), pause=0.01 * i) for i, e in enumerate(("low", "medium",
                                                                                               "high"))]
    p, relay = make(watches)
    outs = collect(relay.compare.follow("c1", request()))
    panel = p.compare
    assert all(set(out) <= {panel.chart, *panel.columns.values()} for out in outs)  # never the chat
    last = outs[-1]
    for effort, column in panel.columns.items():
        assert f"{effort} says 42" in str(last[column]) and f"{effort} effort" in str(last[column])  # stats line
    assert 'data-metric="reasoning_tokens"' in last[panel.chart] and "…" not in last[panel.chart]
    assert all(w.closed for w in watches)


def test_merged_gives_each_watch_latest_until_all_ended():
    watches = [SlowWatch(snaps(2, "low", "a"), pause=0.0), SlowWatch(snaps(3, "high", "b"), pause=0.05)]

    async def run():
        return [[s and s.done for s in latest] async for latest in merged(watches, lambda: 0.0)]

    seen = anyio.run(run)
    assert seen[0][1] is None  # the slow one had nothing yet
    assert seen[-1] == [True, True] and all(w.closed for w in watches)


def test_no_comparison_in_progress_leaves_the_panel_to_settle():
    p, relay = make(watches=None)
    assert collect(relay.compare.follow("c1", request())) == [{p.compare.chart: gr.skip()}]


def test_settle_shows_a_stored_comparison_newest_per_effort():
    compared = [answer(2, "medium", "old medium"), answer(3, "low", "low"), answer(4, "medium", "new medium"),
                answer(5, "high", "high")]
    p, relay = make(compared=compared)
    shown = anyio.run(relay.settle, "c1", request())
    panel = p.compare
    assert "new medium" in str(shown[panel.columns["medium"]]) and "old medium" not in str(shown)
    assert shown[panel.chart].startswith('<svg class="effort-chart"')
    assert "What is 17 + 25?" in str(shown[p.chatbot])


def test_settle_empties_the_panel_after_a_single_answer_and_skips_it_while_written():
    p, relay = make(compared=[answer(2, "low", "x"), answer(3, "high", "y")])
    relay._hand_over("tab-1", "c1", [gr.ChatMessage(role="assistant", content="42")])
    shown = anyio.run(relay.settle, "c1", request())  # a single answer ended: no comparison below it
    assert shown[p.compare.chart] == "" and all(shown[c] == [] for c in p.compare.columns.values())
    relay.chat.writing_now = {"c1"}
    shown = anyio.run(relay.settle, "c1", request())
    assert all(shown[c] == gr.skip() for c in p.compare.outputs)


def test_the_chart_draws_each_figure_per_effort_from_numbers_only():
    figures = [EffortFigures("low", 40, 1.0, 0, 50.0, False), EffortFigures("medium", 120, 2.5, 1, 48.0, False),
               EffortFigures("high", 400, None, 2, None, True)]
    svg = effort_chart(figures)
    assert svg.startswith('<svg class="effort-chart"') and svg.endswith("</svg>")
    assert 'data-effort="high" data-metric="reasoning_tokens" data-value="400"' in svg
    assert 'data-effort="high" data-metric="seconds_to_answer" data-value=""' in svg and "—" in svg  # no answer yet
    assert "400 …" in svg and "120<" in svg  # still growing: said so
    assert 'width="110.0"' in svg  # the largest fills its bar
    assert effort_chart([]) == ""


def test_a_click_on_one_of_your_messages_picks_it_for_the_button_and_again_unpicks_it():
    from ui.compare_panel import BUTTON
    from ui.render import render_history

    later = MessageView(id=3, position=2, role="user", content="And now a much longer question about 38 + 46?")
    first_answer = MessageView(id=2, position=1, role="assistant", content="42", effort="medium", reasoning="adding")
    messages = [QUESTION, first_answer, later]
    p, relay = make()
    view = relay.compare
    view.conversations = SimpleNamespace(open=lambda owner, cid: ConversationView(cid, "t", "", "", {}, messages))
    view.sidebar = SimpleNamespace(owner=lambda request: "alice")
    positions = render_history(messages).positions
    rows = {m.id: positions.index(m.position) for m in (QUESTION, later)}

    def click(index, picked=""):
        return view.pick("c1", picked, SimpleNamespace(index=index), request())

    out = click(rows[3])
    assert out[p.compare.picked] == "3"
    assert out[p.compare.button] == "Compare efforts on “And now a much longer questi…”"
    assert click(rows[1])[p.compare.picked] == "1"
    assert click(rows[3], picked="3") == {p.compare.picked: "", p.compare.button: BUTTON}  # clicked again
    answer_row = next(i for i, pos in enumerate(positions) if pos is None)
    assert all(isinstance(v, type(gr.skip())) for v in click(answer_row, picked="3").values())  # an answer

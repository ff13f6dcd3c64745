"""Compare efforts on the page: start a comparison, stream its three answers into their columns with the
chart above, re-attach after a reload, keep one ("Continue with this one"). The chat service does the
work (backend/services/chat.py `compare`, `attach_comparison`, `keep`); Stop is the page's own (it stops
every answer of the conversation).

Like every relay (ui/relay.py), the comparison's relay outputs only what changes while it is written —
the chart and the columns — never the chat; `settle`, after it, shows the comparison as stored.
"""

from __future__ import annotations

import asyncio
import json

import anyio
import gradio as gr

from backend.services.compare import figures, newest_per_effort
from core.config import DEFAULT_EFFORT
from core.records import ConversationView, MessageStatus, MessageView
from ui.chat import settings_inputs, started_outputs
from ui.compare_panel import BUTTON, button_label, effort_chart
from ui.errors import user_errors
from ui.layout import Page
from ui.relay import START, STREAM, Relay, chat_options
from ui.render import assistant_messages, page_value, render_history


async def merged(watches: list, interval):
    """The latest snapshot of each Watch (None until its first), each time any of them has a new one, at
    most once per `interval()` seconds, until every one has ended. Closing it closes the watches (their
    answers go on)."""
    latest = [None] * len(watches)
    pending = {asyncio.ensure_future(w.__anext__()): i for i, w in enumerate(watches)}
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                i = pending.pop(task)
                try:
                    latest[i] = task.result()
                except StopAsyncIteration:
                    continue
                if not latest[i].done:
                    pending[asyncio.ensure_future(watches[i].__anext__())] = i
            yield list(latest)
            if pending:
                await asyncio.sleep(interval())  # the others' news folds into the next update
    finally:
        for task in pending:
            task.cancel()
        for watch in watches:
            watch.close()


class CompareView:
    def __init__(self, p: Page, chat, conversations, relay: Relay, sidebar):
        self.p, self.panel, self.chat, self.conversations = p, p.compare, chat, conversations
        self.relay, self.sidebar, self.identity = relay, sidebar, relay.identity

    # -- what the panel shows (named outputs) ----------------------------------------------------

    def cleared(self) -> dict:
        return {self.panel.chart: "", **{column: [] for column in self.panel.columns.values()}}

    def unpicked(self) -> dict:
        return {self.panel.picked: "", self.panel.button: BUTTON}

    def unchanged(self) -> dict:
        return {component: gr.skip() for component in self.panel.outputs}

    def shown(self, answers: list[MessageView], turns=None, page: bool = False) -> dict:
        """The chart and a column per answer (`turns`: their LiveAnswers while written; `page`: values in the
        page's own form, for events that run with postprocess=False)."""
        turns = turns or [None] * len(answers)
        out = {self.panel.chart: effort_chart([figures(m, t) for m, t in zip(answers, turns)])}
        for m in answers:
            column = self.panel.columns.get(m.effort)
            if column is not None:
                rows = assistant_messages(m, live=m.status == MessageStatus.STREAMING)
                out[column] = page_value(column, rows) if page else rows
        return out

    def stored(self, conv: ConversationView | None) -> dict:
        """A comparison that waits to be decided, as stored (None, or none in it: the panel emptied)."""
        if conv is None or not conv.compared:
            return self.cleared()
        return {**self.cleared(), **self.shown(newest_per_effort(conv.compared))}

    # -- handlers ----------------------------------------------------------------------------------

    def pick(self, conversation_id, picked, event: gr.SelectData, request: gr.Request) -> dict:
        """A click on one of your messages in the chat picks it for Compare efforts (the button says which);
        a click on it again unpicks it. A click on an answer (opening its steps, say) changes nothing."""
        if not conversation_id:
            return self.unpicked()
        messages = self.conversations.open(self.sidebar.owner(request), conversation_id).messages
        position = render_history(messages).position_at(event.index)
        chosen = next((m for m in messages if position is not None and m.position == position), None)
        if chosen is None:
            return {self.panel.picked: gr.skip(), self.panel.button: gr.skip()}
        if str(chosen.id) == picked:
            return self.unpicked()
        return {self.panel.picked: str(chosen.id), self.panel.button: button_label(chosen.content)}

    def start(self, text, picked, conversation_id, effort, instructions, temperature, max_new_tokens, tools,
              functions, request: gr.Request) -> dict:
        """Compare efforts: the question in the chat, the columns as they start (`follow` streams them)."""
        opts = chat_options(effort, instructions, temperature, max_new_tokens, tools, functions)
        at = int(picked) if str(picked or "").isdigit() else None
        comparison = self.chat.compare(self.sidebar.owner(request), conversation_id or None, text or "", opts,
                                       at=at)
        snaps = []
        for watch in comparison.watches:
            try:
                snaps.append(next(watch))
            finally:
                watch.close()  # the answers go on; `follow` attaches to them by conversation id
        p, turns = self.p, [w.turn for w in comparison.watches]
        return {p.chatbot: self.relay.page(render_history(comparison.history).rows), p.live: [],
                p.conversation_id: comparison.conversation_id, p.message: "", **self.sidebar.listed(request),
                **self.shown([s.live for s in snaps], turns, page=True), **self.unpicked()}

    async def follow(self, conversation_id, request: gr.Request):
        """The conversation's comparison being written, streamed into the panel to its end (after a start,
        or on opening the conversation: a reload re-attaches); nothing when none is."""
        owner = self.identity.owner_or_none(request)
        watches = None
        if owner and conversation_id:
            watches = await anyio.to_thread.run_sync(self.chat.attach_comparison, owner, conversation_id)
        if not watches:
            yield {self.panel.chart: gr.skip()}  # `settle`, next, shows what is stored
            return
        turns, pace = [w.turn for w in watches], watches[0].pace
        with self.relay.relaying(getattr(request, "session_hash", None)):
            async for snaps in merged(watches, pace.interval):
                answers = [(s.live, t) for s, t in zip(snaps, turns) if s is not None and s.live is not None]
                yield self.shown([m for m, _ in answers], [t for _, t in answers], page=True)

    async def api_compare(self, text: str, conversation_id: str, instructions: str, temperature: float,
                          max_new_tokens: int, tools: list[str] | None = None, functions: str | None = None,
                          request: gr.Request = None) -> dict:
        """/compare for scripts: the message (with no text: the last one of the branch shown) answered at
        low, medium and high at once, as the page's button does; returns once all three have ended, with
        the conversation's id and the three answers as data. `/keep` then continues with one. A client
        that leaves stops nothing (`/stop` does)."""
        owner = self.sidebar.owner(request)
        opts = chat_options(DEFAULT_EFFORT, instructions, temperature, max_new_tokens, tools, functions)
        comparison = await anyio.to_thread.run_sync(
            lambda: self.chat.compare(owner, conversation_id or None, text or "", opts))
        try:
            ended = [await _last(watch) for watch in comparison.watches]
        finally:  # a client that left: its watches go, the answers go on
            for watch in comparison.watches:
                watch.close()
        answers = await anyio.to_thread.run_sync(self.conversations.answers_data, owner, comparison.conversation_id,
                                                 [snap.live.id for snap in ended])
        return {"conversation_id": comparison.conversation_id, "answers": answers}

    def api_keep(self, conversation_id: str, effort: str, request: gr.Request = None) -> None:
        """/keep for scripts: "Continue with this one" (the compared answer at `effort` becomes the branch
        shown)."""
        self.chat.keep(self.sidebar.owner(request), conversation_id, effort)

    def keep(self, effort: str):
        def keep(conversation_id, request: gr.Request) -> dict:
            """"Continue with this one": that answer's branch in the chat, the panel emptied."""
            owner = self.sidebar.owner(request)
            if not conversation_id:
                return self.cleared()
            self.chat.keep(owner, conversation_id, effort)
            conv = self.conversations.open(owner, conversation_id)
            return {self.p.chatbot: render_history(conv.messages).rows, **self.cleared(), **self.unpicked()}
        return keep


async def _last(watch):
    """A Watch's last snapshot: its answer as it ended (the message is stored by then)."""
    last = None
    async for last in watch:
        pass
    return last


def wire_compare(p: Page, v: CompareView, relays: list, concurrency: int, starts: list) -> dict:
    """The button, the relay after it, the columns' "Continue with this one", and the panel emptied when
    another conversation (or a new chat) is opened. Returns the relay's event settings, which the sidebar
    chains after opening a conversation (a comparison in progress re-attaches)."""
    panel = p.compare
    # Scripts first, so that they own the plain names (the buttons' handlers are named `keep` too).
    gr.api(user_errors(v.api_compare), api_name="compare", concurrency_limit=concurrency, concurrency_id="turns")
    gr.api(user_errors(v.api_keep), api_name="keep")
    follow = dict(fn=user_errors(v.follow), inputs=[p.conversation_id], outputs=panel.outputs, postprocess=False,
                  api_visibility="private", concurrency_limit=concurrency, **STREAM)
    picking = [panel.picked, panel.button]
    started = panel.button.click(user_errors(v.start), [p.message, panel.picked, p.conversation_id,
                                                        *settings_inputs(p)],
                                 started_outputs(p, p.message) + panel.outputs + picking, **START)
    relays.append(started.success(**follow))
    starts.append(started)
    p.chatbot.select(user_errors(v.pick), [p.conversation_id, panel.picked], picking, api_visibility="private",
                     queue=False, show_progress="hidden")
    # A pick is of the branch as shown: a turn started (sent, regenerated, edited) lets it go, in the browser.
    for turn in (p.send.click, p.message.submit, p.regenerate.click, p.chatbot.edit):
        turn(None, None, picking, js=f"() => ['', {json.dumps(BUTTON)}]", api_visibility="private")
    for effort, button in panel.keep.items():
        button.click(user_errors(v.keep(effort)), [p.conversation_id], [p.chatbot, *panel.outputs, *picking],
                     api_visibility="private")
    for leave in (p.conversations.input, p.search_results.input, p.new_chat.click, p.confirm_delete.click):
        leave(lambda: {**v.cleared(), **v.unpicked()}, None, panel.outputs + picking, api_visibility="private",
              queue=False, show_progress="hidden")
    return follow

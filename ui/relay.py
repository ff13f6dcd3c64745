"""Following an answer being written: what the chat, the sidebar and the function box share.

An answer belongs to the server; the page only relays it. A relay runs on the event loop and holds no
thread between updates, so closing the tab or opening another conversation ends it at once, and never
the answer: it goes on on the server. Every method here returns (or yields) named outputs — dicts keyed
by the page's components — never tuples whose order must match a list in another file.
"""

from __future__ import annotations

import anyio
import gradio as gr

from backend.services.options import ChatOptions
from core.config import DEFAULT_EFFORT
from ui.identity import Identity
from ui.layout import Page
from ui.render import assistant_messages, page_value, render_history

REPAINT_GUARD_S = 0.75  # after opening an idle conversation, show it again once, this much later
RELAY_END_WAIT_S, RELAY_END_POLL_S = 10.0, 0.05  # ...after the page's relay left behind has ended
STREAM = dict(show_progress="hidden", concurrency_id="turns")  # the events that relay an answer
# Starting a turn is quick (store the message, claim, submit): a direct call, outside the queue, with the
# inputs as the page sent them and the outputs already in the page's form: Gradio's own processing (a
# worker-thread trip per input) cost 2-4 ms of app CPU per turn (40 turns in a row, 30-32 -> 28 ms), and
# the chat service checks every option itself (backend/services/options.py).
START = dict(api_visibility="private", queue=False, preprocess=False, postprocess=False)


def chat_options(effort, instructions, temperature, max_new_tokens, tools=None, functions=None) -> ChatOptions:
    """The settings row of the page as the one settings object the services take (they check it)."""
    return ChatOptions(effort or DEFAULT_EFFORT, instructions or "", temperature, max_new_tokens,
                       list(tools or []), functions or None)


class Relay:
    """Shows a turn's Watch on the page (backend/serving/live.py)."""

    def __init__(self, p: Page, chat, conversations, identity: Identity):
        self.p, self.chat, self.conversations, self.identity = p, chat, conversations, identity
        self._relaying: dict[str | None, int] = {}  # page session -> its relays of a turn still running

    def page(self, rows) -> list[dict]:
        """Messages in the page's own form (the relay's events run with postprocess=False)."""
        return page_value(self.p.chatbot, rows)

    def shown(self, history, live) -> dict:
        return {self.p.chatbot: history, self.p.live: live}

    async def stream(self, watch):
        """The chat and the live panel per update of a turn's Watch.

        The history is rendered at the start and the end of a turn; in between the same object is sent
        again and only the live exchange changes. The relay's events run with postprocess=False and
        yield values already in the page's form: Gradio then sends each update as a diff without
        processing anything again (a gr.skip() or a component update in a streaming yield makes it
        rebuild that component and its schema: ~5 ms each, on every token). (Gradio still walks every
        output of every update looking for files, so a long conversation costs more per update:
        measured, 2.4x at 200 messages.)
        """
        history = None
        try:
            async for snap in watch:
                if snap.done:
                    yield self.shown(self.page(render_history(snap.history + [snap.live]).rows), [])
                    return
                if history is None:
                    history = self.page(render_history(snap.history).rows)
                yield self.shown(history, self.page(assistant_messages(snap.live, live=True) if snap.live else []))
        finally:
            watch.close()

    def first(self, watch) -> dict:
        """The chat and live panel right after a turn started (`follow` takes over from there)."""
        try:
            snap = next(watch)
        finally:
            watch.close()  # the turn goes on; `follow` attaches to it by conversation id
        live = assistant_messages(snap.live, live=True) if snap.live and not snap.done else []
        rows = render_history(snap.history + ([snap.live] if snap.done else [])).rows
        return {**self.shown(self.page(rows), self.page(live)), self.p.conversation_id: snap.conversation_id}

    async def _follow(self, conversation_id, request: gr.Request, stored_if_idle: bool):
        """What is written so far of the conversation's answer in progress, then the live stream."""
        owner = self.identity.owner_or_none(request)
        watch = None
        if owner and conversation_id:
            watch = await anyio.to_thread.run_sync(self.chat.attach, owner, conversation_id)  # marks it seen
        if watch is not None:
            session = getattr(request, "session_hash", None)
            self._relaying[session] = self._relaying.get(session, 0) + 1
            try:
                async for out in self.stream(watch):
                    yield out
            finally:
                if (left := self._relaying.pop(session) - 1) > 0:
                    self._relaying[session] = left
        elif owner and conversation_id and stored_if_idle:
            conv = await anyio.to_thread.run_sync(self.conversations.open, owner, conversation_id)
            yield self.shown(self.page(render_history(conv.messages).rows), [])
        else:  # nothing in progress: the chat stays as opened (a generator that yields nothing would
            # empty it), the live panel empty, even if a relay cancelled on the way out repainted it
            yield self.shown(gr.skip(), [])

    async def follow(self, conversation_id, request: gr.Request):
        """The page, right after a turn started: its answer streamed to the end (or, if it has already
        ended, the conversation as stored). Also /attach for scripts."""
        async for out in self._follow(conversation_id, request, stored_if_idle=True):
            yield out

    async def follow_opened(self, conversation_id, request: gr.Request):
        """The page, right after opening a conversation (click, reload, a second tab, another device):
        the live stream if an answer is in progress; otherwise the conversation as stored once more,
        because the relay of the conversation left behind, cancelled, may have repainted its own last
        values over the one just opened (Gradio sends a cancelled stream's last values)."""
        last = None
        async for last in self._follow(conversation_id, request, stored_if_idle=True):
            yield last
        owner = self.identity.owner_or_none(request)
        if owner and last is not None and isinstance(last[self.p.chatbot], list) and last[self.p.live] == []:
            # A cancelled relay's last values can reach the page after this: show it once more, and
            # again once the page's relay left behind has really ended if it had not yet (on a loaded
            # server its cancel can come later than any fixed delay).
            session = getattr(request, "session_hash", None)
            await anyio.sleep(REPAINT_GUARD_S)
            if conversation_id not in self.chat.writing(owner):
                yield last
            if self._relaying.get(session):
                with anyio.move_on_after(RELAY_END_WAIT_S):
                    while self._relaying.get(session):
                        await anyio.sleep(RELAY_END_POLL_S)
                await anyio.sleep(REPAINT_GUARD_S)
                if conversation_id not in self.chat.writing(owner):
                    yield last

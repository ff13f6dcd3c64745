"""Following an answer being written: what the chat, the sidebar and the function box share.

An answer belongs to the server; the page only relays it. A relay runs on the event loop and holds no
thread between updates, so closing the tab or opening another conversation ends it at once, and never
the answer: it goes on on the server. Every method here returns (or yields) named outputs — dicts keyed
by the page's components — never tuples whose order must match a list in another file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from collections import OrderedDict

import anyio
import gradio as gr

from backend.services.options import ChatOptions
from core.config import DEFAULT_EFFORT
from core.errors import NotFoundError
from ui.identity import Identity
from ui.layout import Page
from ui.render import assistant_messages, page_value, render_history

REPAINT_GUARD_S = 0.75  # after opening an idle conversation, show it again once, this much later
RELAY_END_WAIT_S, RELAY_END_POLL_S = 10.0, 0.05  # ...after the page's relay left behind has ended
ENDED_KEPT = 1024  # per-page records kept: turns ended whose page has not settled yet, chats painted
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
        # (page session, conversation) -> the chat as a relay saw its turn end, for `settle` to show without
        # reading it back; bounded, since a tab closed in between never settles
        self._ended: OrderedDict[tuple, list] = OrderedDict()
        # (page session, conversation) -> a digest of the chat last sent to that page for it (`painted`)
        self._painted: OrderedDict[tuple, bytes] = OrderedDict()
        self._left: OrderedDict[str, str] = OrderedDict()  # page session -> the conversation it left (New chat)
        self.compare = None  # ui/compare.py's CompareView: `settle` shows a stored comparison (or none)

    def page(self, rows) -> list[dict]:
        """Messages in the page's own form (the relay's events run with postprocess=False)."""
        return page_value(self.p.chatbot, rows)

    def shown(self, history, live) -> dict:
        return {self.p.chatbot: history, self.p.live: live}

    def painted(self, request, conversation_id, rows) -> list:
        """Remember the chat this page was sent for the conversation (opened, reloaded, settled), so that
        `settle` sends it again only if it changed. Returns `rows`."""
        session = getattr(request, "session_hash", None)
        if session is not None:
            _bounded_put(self._painted, (session, conversation_id), _digest(rows))
            with _KEPT_LOCK:
                if self._left.get(session) == conversation_id:  # shown again
                    del self._left[session]
        return rows

    def leave(self, request, conversation_id) -> None:
        """The page left the conversation for a new chat: a `settle` of it still on its way paints nothing."""
        session = getattr(request, "session_hash", None)
        if session is not None and conversation_id:
            _bounded_put(self._left, session, conversation_id)

    def left(self, request, conversation_id) -> bool:
        return bool(conversation_id) and self._left.get(getattr(request, "session_hash", None)) == conversation_id

    def _unchanged_since_painted(self, request, conversation_id, rows) -> bool:
        key = (getattr(request, "session_hash", None), conversation_id)
        return key[0] is not None and self._painted.get(key) == _digest(rows)

    async def stream(self, watch, with_history: bool = False, ended=None):
        """The live panel (and, `with_history`, the chat) per update of a turn's Watch.

        The page's relays send the live panel alone: the chat is painted when a turn starts and, after
        the relay, by `settle`. Gradio walks, copies and diffs every output of every streamed update
        (its file search, its config copy, its diff), so an update that carried the chat cost more the
        longer the conversation (measured: 2.4x at 200 messages); the live panel costs the same at any
        length. The relays run with postprocess=False and yield values already in the page's form (a
        gr.skip() or a component update in a streaming yield makes Gradio rebuild that component and its
        schema: ~5 ms each, on every token). Scripts (/send, /attach...) get the chat too, in one event:
        `with_history`, where the history is rendered at the start and the end of a turn and the same
        object is sent again in between. `ended(rows)` gets the chat as the turn ended.
        """
        history = None
        try:
            async for snap in watch:
                if snap.done:  # the answer as it ended: `settle` then moves it into the chat
                    rows = render_history(snap.history + [snap.live]).rows
                    if ended is not None:
                        ended(rows)
                    if with_history:
                        yield self.shown(self.page(rows), [])
                    else:
                        yield {self.p.live: self.page(assistant_messages(snap.live))}
                    return
                live = self.page(assistant_messages(snap.live, live=True) if snap.live else [])
                if not with_history:
                    yield {self.p.live: live}
                    continue
                if history is None:
                    history = self.page(render_history(snap.history).rows)
                yield self.shown(history, live)
        finally:
            watch.close()

    async def settle(self, conversation_id, request: gr.Request) -> dict:
        """After a page's relay (ended or cancelled): the conversation shown as stored, the live panel
        emptied. Left as they are while an answer is being written in it (a relay shows that one). Its id
        is the one shown now, which after a cancel is the one opened since.

        The chat is sent only if it differs from what this page was last sent for it: opening an idle
        conversation ends its relays at once, and a repaint of the same chat then could land after the
        user had moved on (a "New chat" clicked meanwhile showed the old chat again, with no id). Nothing
        at all once the page left the conversation for a new chat (`leave`): a settle asked before that
        can be answered after it."""
        owner = self.identity.owner_or_none(request)
        compare = self.compare
        if not (owner and conversation_id):
            return {**self.shown([], []), **(compare.stored(None) if compare else {})}
        unchanged = {self.p.chatbot: gr.skip(), self.p.live: gr.skip(), **(compare.unchanged() if compare else {})}
        rows = self._ended.pop((getattr(request, "session_hash", None), conversation_id), None)
        if conversation_id in self.chat.writing(owner):
            return unchanged
        conv = None  # handed-over rows end with an answer: no comparison waits below them
        if rows is None:  # the relay was cancelled, or followed nothing: the chat as stored
            try:
                conv = await anyio.to_thread.run_sync(self.conversations.open, owner, conversation_id)
            except NotFoundError:  # deleted (a relay of it cancelled by the delete): the page clears itself
                return unchanged
            rows = render_history(conv.messages).rows
            if conversation_id in self.chat.writing(owner):  # a turn started meanwhile: its start painted it
                return unchanged
        if self.left(request, conversation_id):  # New chat meanwhile
            return unchanged
        if self._unchanged_since_painted(request, conversation_id, rows):
            chat = gr.skip()
        else:
            chat = self.painted(request, conversation_id, rows)
        return {**self.shown(chat, []), **(compare.stored(conv) if compare else {})}

    def _hand_over(self, session, conversation_id, rows) -> None:
        _bounded_put(self._ended, (session, conversation_id), rows)

    def first(self, watch) -> dict:
        """The chat and live panel right after a turn started (`follow` takes over from there)."""
        try:
            snap = next(watch)
        finally:
            watch.close()  # the turn goes on; `follow` attaches to it by conversation id
        live = assistant_messages(snap.live, live=True) if snap.live and not snap.done else []
        rows = render_history(snap.history + ([snap.live] if snap.done else [])).rows
        return {**self.shown(self.page(rows), self.page(live)), self.p.conversation_id: snap.conversation_id}

    async def _follow(self, conversation_id, request: gr.Request, with_history: bool):
        """The conversation's answer in progress, streamed; when none is (it has ended, or none was
        started) the live panel emptied, and `with_history` the chat as stored."""
        owner = self.identity.owner_or_none(request)
        watch = None
        if owner and conversation_id:
            watch = await anyio.to_thread.run_sync(self.chat.attach, owner, conversation_id)  # marks it seen
        if watch is not None:
            session = getattr(request, "session_hash", None)
            with self.relaying(session):
                ended = functools.partial(self._hand_over, session, conversation_id)
                async for out in self.stream(watch, with_history, ended):
                    yield out
        elif not with_history:
            yield {self.p.live: []}
        elif owner and conversation_id:
            conv = await anyio.to_thread.run_sync(self.conversations.open, owner, conversation_id)
            yield self.shown(self.page(render_history(conv.messages).rows), [])
        else:  # nothing in progress: the chat stays as it is (a generator that yields nothing would
            # empty it), the live panel empty
            yield self.shown(gr.skip(), [])

    @contextlib.contextmanager
    def relaying(self, session):
        """A page's relay of a turn runs (`follow_opened` waits for the one left behind to end)."""
        self._relaying[session] = self._relaying.get(session, 0) + 1
        try:
            yield
        finally:
            if (left := self._relaying.pop(session) - 1) > 0:
                self._relaying[session] = left

    async def follow(self, conversation_id, request: gr.Request):
        """The page, right after a turn started: its answer streamed in the live panel to the end
        (`settle`, chained after it, then shows the chat as stored)."""
        async for out in self._follow(conversation_id, request, with_history=False):
            yield out

    async def attach(self, conversation_id, request: gr.Request):
        """/attach for scripts: the answer in progress as (chat, live panel) updates to its end, or the
        conversation as stored at once."""
        async for out in self._follow(conversation_id, request, with_history=True):
            yield out

    async def follow_opened(self, conversation_id, request: gr.Request):
        """The page, right after opening a conversation (click, reload, a second tab, another device):
        the live stream if an answer is in progress; otherwise the live panel emptied once more, because
        the relay of the conversation left behind, cancelled, may have repainted its own last values
        over it (Gradio sends a cancelled stream's last values)."""
        last = None
        async for last in self._follow(conversation_id, request, with_history=False):
            yield last
        owner = self.identity.owner_or_none(request)
        if owner and last is not None and last[self.p.live] == []:
            # A cancelled relay's last values can reach the page after this: empty the panel once more,
            # and again once the page's relay left behind has really ended if it had not yet (on a
            # loaded server its cancel can come later than any fixed delay).
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



_KEPT_LOCK = threading.Lock()  # the sidebar's handlers run in Gradio's worker threads


def _bounded_put(kept: OrderedDict, key, value) -> None:
    """Per page session: bounded, since a tab closed never says so."""
    with _KEPT_LOCK:
        kept[key] = value
        kept.move_to_end(key)
        while len(kept) > ENDED_KEPT:
            kept.popitem(last=False)


def _digest(rows) -> bytes:
    return hashlib.blake2b(repr(rows).encode(), digest_size=16).digest()

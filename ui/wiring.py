"""Connect the page's events to the services. Handlers only translate.

Every handler that a client may call has a stable api_name (see README). The page reaches
conversations through backend services (chat, conversations, sharing), never the repository.
"""

from __future__ import annotations

import json

import anyio
import gradio as gr

from backend.services.chat import ChatOptions, ChatService
from backend.services.conversations import Conversations
from core.config import DEFAULT_EFFORT
from core.errors import NotFoundError
from core.records import MessageStatus
from ui.admin import wire_admin
from ui.errors import user_errors
from ui.function_results import show_waiting_calls, wire_function_results
from ui.identity import Identity
from ui.layout import Page
from ui.render import assistant_messages, escape_html, page_value, render_history
from ui.sharing import ShareHandlers, wire_sharing
from ui.sidebar import wire_sidebar
from ui.status import wire_status


class Handlers:
    """Plain functions over the services; wired to the page by the wire_* functions below."""

    def __init__(self, chat: ChatService, conversations: Conversations, identity: Identity,
                 shares: ShareHandlers, page_chatbot: gr.Chatbot):
        self.chat, self.conversations, self.shares = chat, conversations, shares
        self.owner, self.identity = identity.owner, identity
        self.page_chatbot = page_chatbot  # its own postprocess puts messages in the page's form
        self._relaying: dict[str | None, int] = {}  # page session -> its relays of a turn still running

    # streaming turns -----------------------------------------------------------------
    # A turn on the page is two events, Gradio's chat idiom: a quick one stores the message, starts
    # the answer on the server and clears the box; then `follow` relays the answer as it is written.
    # The relay's event runs with postprocess=False and yields values already in the page's form:
    # Gradio then sends each update as a diff against the last one without processing anything again
    # (a gr.skip() or a component update in a streaming yield makes it rebuild that component and its
    # schema: ~5 ms each, on every token).

    def _page(self, rows) -> list[dict]:
        return page_value(self.page_chatbot, rows)

    async def _relay(self, watch):
        """(history, live) in page form per update of a turn's Watch.

        The relay runs on the event loop and holds no thread between updates, so closing the tab or
        opening another conversation ends it at once, and never the turn: the answer goes on on the
        server. The history is rendered at the start and the end of a turn; in between the same object
        is sent again and only the live exchange changes. (Gradio still walks and copies every output
        of every update looking for files, so a long conversation costs more per update: measured, 2.4x
        at 200 messages. Moving the history out of the relay into a step after it cost more than it
        saved for the many short chats of bench/app_ceiling.py, so it stays.)
        """
        history = None
        try:
            async for snap in watch:
                if snap.done:
                    yield self._page(render_history(snap.history + [snap.live]).rows), []
                    return
                if history is None:
                    history = self._page(render_history(snap.history).rows)
                yield history, self._page(assistant_messages(snap.live, live=True) if snap.live else [])
        finally:
            watch.close()

    def _started(self, watch, request: gr.Request):
        """The page right after a turn started: the history with the new message, what the live panel
        shows so far, the conversation id, an empty message box, and the sidebar (the conversation
        on top, marked as being written). `follow` takes over from here."""
        try:
            snap = next(watch)
        finally:
            watch.close()  # the turn goes on; `follow` attaches to it by conversation id
        live = assistant_messages(snap.live, live=True) if snap.live and not snap.done else []
        rows = render_history(snap.history + ([snap.live] if snap.done else [])).rows
        choices = self.sidebar_choices(request)
        return (self._page(rows), self._page(live), snap.conversation_id, "", gr.Radio(choices=choices),
                [list(c) for c in choices])

    @staticmethod
    def _options(effort, instructions, temperature, max_new_tokens, tools=None, functions=None) -> ChatOptions:
        return ChatOptions(effort or DEFAULT_EFFORT, instructions or "", temperature, max_new_tokens,
                           list(tools or []), functions or None)

    def send(self, text, conversation_id, effort, instructions, temperature, max_new_tokens, tools, functions,
             request: gr.Request):
        if not (text or "").strip():
            return (gr.skip(),) * 6  # an empty message is simply not sent
        opts = self._options(effort, instructions, temperature, max_new_tokens, tools, functions)
        return self._started(self.chat.send(self.owner(request), conversation_id or None, text, opts), request)

    def regenerate(self, conversation_id, effort, instructions, temperature, max_new_tokens, tools, functions,
                   request: gr.Request):
        if not conversation_id:
            raise NotFoundError("Open or start a conversation first.")
        opts = self._options(effort, instructions, temperature, max_new_tokens, tools, functions)
        return self._started(self.chat.regenerate(self.owner(request), conversation_id, opts), request)

    def edit(self, conversation_id, effort, instructions, temperature, max_new_tokens, tools, functions,
             edit: gr.EditData, request: gr.Request):
        owner = self.owner(request)
        opts = self._options(effort, instructions, temperature, max_new_tokens, tools, functions)
        positions = render_history(self.conversations.open(owner, conversation_id).messages).positions
        index = edit.index if isinstance(edit.index, int) else edit.index[0]
        position = positions[index] if 0 <= index < len(positions) else None
        return self._started(self.chat.edit(owner, conversation_id, position, edit.value, opts), request)

    async def api_send(self, text, conversation_id, effort, instructions, temperature, max_new_tokens,
                       tools=None, functions=None, request: gr.Request = None):
        """/send for scripts: the whole answer as one stream of (chat, live, conversation id). `tools`:
        which of the server's tools the model may use (none unless named)."""
        opts = self._options(effort, instructions, temperature, max_new_tokens, tools, functions)
        owner = self.owner(request)  # the database work and the claim run off the event loop:
        watch = await anyio.to_thread.run_sync(self.chat.send, owner, conversation_id or None, text, opts)
        async for history, live in self._relay(watch):
            yield history, live, watch.turn.conversation_id

    async def api_regenerate(self, conversation_id, effort, instructions, temperature, max_new_tokens,
                             tools=None, functions=None, request: gr.Request = None):
        """/regenerate for scripts: the new answer as one stream."""
        if not conversation_id:
            raise NotFoundError("Open or start a conversation first.")
        opts = self._options(effort, instructions, temperature, max_new_tokens, tools, functions)
        owner = self.owner(request)
        watch = await anyio.to_thread.run_sync(self.chat.regenerate, owner, conversation_id, opts)
        async for history, live in self._relay(watch):
            yield history, live, conversation_id

    def stop(self, conversation_id, request: gr.Request) -> None:
        self.chat.stop(self.owner(request), conversation_id or None)

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
                async for out in self._relay(watch):
                    yield out
            finally:
                if (left := self._relaying.pop(session) - 1) > 0:
                    self._relaying[session] = left
        elif owner and conversation_id and stored_if_idle:
            conv = await anyio.to_thread.run_sync(self.conversations.open, owner, conversation_id)
            yield self._page(render_history(conv.messages).rows), []
        else:  # nothing in progress: the chat stays as opened (a generator that yields nothing would
            # empty it), the live panel empty, even if a relay cancelled on the way out repainted it
            yield gr.skip(), []

    async def follow(self, conversation_id, request: gr.Request):
        """The page, right after a turn started: its answer streamed to the end (or, if it has already
        ended, the conversation as stored)."""
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
        if owner and last is not None and isinstance(last[0], list) and last[1] == []:
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

    async def attach(self, conversation_id, request: gr.Request):
        """/attach: a script follows a conversation's answer in progress to its end; with none in
        progress (any more) it gets the conversation as stored at once."""
        async for out in self._follow(conversation_id, request, stored_if_idle=True):
            yield out

    def sidebar_choices(self, request: gr.Request) -> list[tuple[str, str]]:
        """(label, id) per conversation; the label says when an answer is being written or came in
        unseen."""
        owner = self.identity.owner_or_none(request)
        if not owner:
            return []
        writing, unseen = self.chat.writing(owner), self.chat.unseen(owner)
        return [(title + (WRITING if cid in writing else NEW_ANSWER if cid in unseen else ""), cid)
                for cid, title in self.conversations.titles(owner)]

    def sidebar(self, request: gr.Request):
        return gr.Radio(choices=self.sidebar_choices(request))

    def refresh_sidebar(self, shown, request: gr.Request):
        """The timer's refresh: an update only when the list changed (no flicker, no needless work)."""
        choices = [list(c) for c in self.sidebar_choices(request)]
        if choices == shown:
            return gr.skip(), gr.skip()
        return gr.Radio(choices=[tuple(c) for c in choices]), choices

    def open(self, conversation_id, request: gr.Request):
        """Show a stored conversation; an answer in progress in it is followed by `follow` next."""
        owner = self.owner(request)
        conv = self.conversations.open(owner, conversation_id)  # `follow`, next, marks it seen
        messages = conv.messages
        if messages and messages[-1].status == MessageStatus.STREAMING and conv.id in self.chat.writing(owner):
            messages = messages[:-1]  # the answer being written shows in the live panel, not twice
        s = conv.settings
        tools = [t for t in s.get("tools", self.chat.default_tools()) if t in self.chat.toolbox.names]
        functions = json.dumps(s["functions"], indent=1, ensure_ascii=False) if s.get("functions") else ""
        return (render_history(messages).rows, hidden_live(), conv.id, conv.title, s.get("effort", DEFAULT_EFFORT),
                s.get("instructions", ""), tools, functions, gr.Radio(value=conv.id))

    def load(self, request: gr.Request):
        """Page load: the sidebar, and the conversation named by ?c= if it is the user's.

        ?copy=<token> (the shared page's "Copy into a new chat") asks first: a link must not put
        someone else's conversation into your chats by itself.
        """
        no_copy = (gr.Row(visible=False), gr.skip(), "")
        if not self.identity.signed_in(request):
            return [], hidden_live(), "", "", gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.Radio(choices=[]), \
                *no_copy
        params = dict(request.query_params) if request is not None else {}
        ask = self._ask_copy(params["copy"]) if params.get("copy") else no_copy
        sidebar = self.sidebar(request)
        if params.get("c"):
            try:
                opened = self.open(params["c"], request)
                return (*opened[:-1], gr.Radio(choices=sidebar.choices, value=opened[2]), *ask)
            except NotFoundError as exc:
                gr.Warning(exc.user_message)
        return [], hidden_live(), "", "", gr.skip(), gr.skip(), self.chat.default_tools(), gr.skip(), sidebar, *ask

    def _ask_copy(self, token: str):
        try:
            title = self.shares.title(token)
        except NotFoundError as exc:
            gr.Warning(exc.user_message)
            return gr.Row(visible=False), gr.skip(), ""
        return (gr.Row(visible=True), f"Copy the shared conversation “{escape_html(title)}” into a new chat "
                "of yours?", token)

    def copy_confirmed(self, token, request: gr.Request):
        cid = self.shares.copy(token, request)
        opened = self.open(cid, request)
        return (*opened[:-1], gr.Radio(choices=self.sidebar(request).choices, value=cid),
                gr.Row(visible=False), "")

    @staticmethod
    def copy_cancelled():
        return gr.Row(visible=False), ""

    def preview(self, effort, instructions, tools, functions) -> str:
        """The system and developer messages as the model will read them with these settings."""
        try:
            return self.chat.preview(self._options(effort, instructions, 1.0, 1, tools, functions))
        except Exception as exc:  # e.g. instructions over the limit: the send will say so properly
            return f"(cannot show: {getattr(exc, 'user_message', exc)})"

    def api_open(self, conversation_id: str, request: gr.Request) -> dict:
        """A conversation as data (messages with reasoning, status and stats)."""
        return self.conversations.as_data(self.owner(request), conversation_id)

    def api_list(self, request: gr.Request) -> list[dict]:
        """The user's conversations, newest first."""
        return [{"id": c.id, "title": c.title, "updated": c.updated}
                for c in self.conversations.list(self.owner(request))]

    def new_chat(self):
        return [], hidden_live(), "", "", gr.Radio(value=None)

    def rename(self, conversation_id, title, request: gr.Request):
        self.conversations.rename(self.owner(request), conversation_id, title)
        return self.sidebar(request)

    def delete(self, conversation_id, request: gr.Request):
        owner = self.owner(request)
        self.chat.stop(owner, conversation_id)  # an answer being written goes with its conversation
        self.conversations.delete(owner, conversation_id)
        return [], hidden_live(), "", "", self.sidebar(request), gr.Row(visible=False)

    def search(self, query, include_reasoning, request: gr.Request):
        if not (query or "").strip():
            return gr.Radio(choices=[], visible=False)
        found = self.conversations.search(self.owner(request), query, bool(include_reasoning))
        return gr.Radio(choices=found, value=None, visible=True,
                        label=f"Matches ({len(found)})" if found else "No matches")

    def export_json(self, conversation_id: str, request: gr.Request) -> str:
        """The conversation as JSON text (the page downloads it from /export/<id>/json instead)."""
        return self.conversations.export(self.owner(request), conversation_id, "json")[1]

    def export_markdown(self, conversation_id: str, request: gr.Request) -> str:
        """The conversation as Markdown text."""
        return self.conversations.export(self.owner(request), conversation_id, "markdown")[1]


STREAM = dict(show_progress="hidden", concurrency_id="turns")
REPAINT_GUARD_S = 0.75  # after opening an idle conversation, show it again once, this much later
RELAY_END_WAIT_S, RELAY_END_POLL_S = 10.0, 0.05  # ...after the page's relay left behind has ended
WRITING, NEW_ANSWER = " · writing…", " · new answer"  # sidebar marks


def hidden_live() -> list:
    """The live panel emptied (the page's CSS hides it while it is empty): a conversation opens
    without another's answer under it."""
    return []


def wire_turns(p: Page, h: Handlers, concurrency: int) -> list:
    """Send, regenerate, edit (started, then streamed into the live panel by `follow`), stop, and the
    API's whole-answer streams. Returns the page's relays: events that only show a turn (cancelling
    one never stops the turn itself). `concurrency` is high enough that a request past the worker's
    capacity reaches the worker and is refused at once ("busy") rather than parked in Gradio's queue."""
    opts = [p.effort, p.instructions, p.temperature, p.max_new_tokens, p.tools, p.functions]
    started = [p.chatbot, p.live, p.conversation_id, p.message, p.conversations, p.sidebar_shown]
    shown = [p.chatbot, p.live]
    limit = dict(concurrency_limit=concurrency)
    relays = []
    # Starting a turn is quick (store the message, claim, submit): a direct call, outside the queue,
    # with the inputs as the page sent them and the outputs already in the page's form: Gradio's own
    # processing (a worker-thread trip per input) cost 2-4 ms of app CPU per turn (40 turns in a row,
    # 30-32 -> 28 ms), and the chat service checks every option itself (backend/services/options.py).
    start = dict(api_visibility="private", queue=False, preprocess=False, postprocess=False)

    def then_follow(event):
        relays.append(event.success(user_errors(h.follow), [p.conversation_id], shown, postprocess=False,
                                    api_visibility="private", **STREAM, **limit))

    send_inputs = [p.message, p.conversation_id, *opts]
    # Scripts (registered first, so they own the plain names): /send and /regenerate stream the whole
    # answer; /attach follows one in progress.
    api_out = [p.chatbot, p.live, p.conversation_id]
    p.api_send.click(user_errors(h.api_send), send_inputs, api_out, api_name="send", postprocess=False,
                     **STREAM, **limit)
    p.api_regenerate.click(user_errors(h.api_regenerate), [p.conversation_id, *opts], api_out,
                           api_name="regenerate", postprocess=False, **STREAM, **limit)
    relays.append(p.attach.click(user_errors(h.attach), [p.conversation_id], shown, api_name="attach",
                                 postprocess=False, **STREAM, **limit))
    then_follow(p.send.click(user_errors(h.send), send_inputs, started, **start))
    then_follow(p.message.submit(user_errors(h.send), send_inputs, started, **start))
    then_follow(p.regenerate.click(user_errors(h.regenerate), [p.conversation_id, *opts], started, **start))
    then_follow(p.chatbot.retry(user_errors(h.regenerate), [p.conversation_id, *opts], started, **start))
    # The edit arrives as the chatbot's event data, which an API call cannot carry: page only.
    then_follow(p.chatbot.edit(user_errors(h.edit), [p.conversation_id, *opts], started, **start))
    p.stop.click(user_errors(h.stop), [p.conversation_id], None, api_name="stop", queue=False)
    wire_function_results(p, h, opts, start, then_follow)
    return relays


def wire(p: Page, *, chat: ChatService, conversations: Conversations, sharing, host, identity: Identity,
         concurrency: int, details: bool, admin=None) -> Handlers:
    """All of the page's events (call inside `with page.demo:`)."""
    share_handlers = ShareHandlers(sharing, identity)
    h = Handlers(chat, conversations, identity, share_handlers, p.chatbot)
    relays = wire_turns(p, h, concurrency)
    loaded = wire_sidebar(p, h, relays, STREAM)
    show_waiting_calls(p, h, relays)
    wire_sharing(p, share_handlers)
    wire_status(p, host, identity, details, chat.default_tools, chat.default_temperature, loaded)
    preview = dict(fn=h.preview, inputs=[p.effort, p.instructions, p.tools, p.functions], outputs=p.prompt_preview,
                   api_visibility="private", show_progress="hidden", queue=False)
    for changed in (p.effort.change, p.instructions.blur, p.tools.change, p.functions.blur):
        changed(**preview)
    p.demo.load(**preview)
    if admin is not None:
        wire_admin(p.admin, p.demo, admin, identity)
    return h

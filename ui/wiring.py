"""Connect the page's events to the services. Handlers only translate.

Every handler that a client may call has a stable api_name (see README). The page reaches
conversations through backend services (chat, conversations, sharing), never the repository.
"""

from __future__ import annotations

import anyio
import gradio as gr

from backend.chat import ChatOptions, ChatService
from backend.conversations import Conversations
from core.config import DEFAULT_EFFORT
from core.errors import NotFoundError
from ui.errors import user_errors
from ui.identity import Identity
from ui.layout import Page
from ui.render import assistant_messages, escape_html, render_history
from ui.sharing import ShareHandlers, wire_sharing

SET_URL_JS = """(id) => { const u = new URL(window.location.href);
  if (id) { u.searchParams.set('c', id); } else { u.searchParams.delete('c'); }
  u.searchParams.delete('copy');  // a shared chat is copied once, not on every reload
  window.history.replaceState(null, '', u); }"""


DOWNLOAD_JS = "(id) => { if (id) { window.location.assign('export/' + id + '/KIND'); } }"


def status_markdown(status, details: bool = False) -> str:
    """The banner. `details`: also what failed and what to do (for the one local user, who runs the
    server; visitors of a multi-user deployment get the plain sentence and the log keeps the rest)."""
    if status.state == "ready":
        d = status.description
        text = (f"**Model:** {d.get('model', '?')} · **quantization:** {d.get('quantization', '?')} · "
                f"**engine:** {d.get('engine', '?')} · **device:** {d.get('device', '?')}")
        if d.get("notice"):
            text += f"\n\n**Notice:** {d['notice']}"
        return text
    if status.state == "failed":
        return f"**{status.error}**" + (f"\n\n{status.detail}" if details and status.detail else "")
    pct = f" — {status.fraction:.0%}" if status.fraction is not None else ""
    return f"**Loading the model…** {status.stage}{pct}. The chat opens when it is ready."


class Handlers:
    """Plain functions over the services; wired to the page by the wire_* functions below."""

    def __init__(self, chat: ChatService, conversations: Conversations, identity: Identity,
                 shares: ShareHandlers):
        self.chat, self.conversations, self.shares = chat, conversations, shares
        self.owner, self.identity = identity.owner, identity

    # streaming turns -----------------------------------------------------------------
    async def _relay(self, watch, clear_message: bool = True):
        """(history, live, conversation id, message box) per update of a turn's Watch.

        The relay runs on the event loop and holds no thread between updates, so closing the tab or
        opening another conversation ends it at once, and never the turn: the answer goes on on the
        server. The history is sent twice per turn (start and end); the updates in between carry
        only the live exchange.
        """
        first = True
        try:
            async for snap in watch:
                if snap.done:
                    rows = render_history(snap.history + [snap.live]).rows
                    yield rows, hidden_live(), snap.conversation_id, gr.skip()
                    return
                live = assistant_messages(snap.live, live=True) if snap.live else []
                if first:  # the user's message is already in the history
                    yield (render_history(snap.history).rows, gr.Chatbot(value=live, visible=True),
                           snap.conversation_id, "" if clear_message else gr.skip())
                    first = False
                else:
                    yield gr.skip(), live, gr.skip(), gr.skip()
        finally:
            watch.close()

    @staticmethod
    def _options(effort, instructions, temperature, max_new_tokens) -> ChatOptions:
        return ChatOptions(effort or DEFAULT_EFFORT, instructions or "", temperature, max_new_tokens)

    async def send(self, text, conversation_id, effort, instructions, temperature, max_new_tokens,
                   request: gr.Request):
        if not (text or "").strip():
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()  # an empty message is simply not sent
            return
        opts = self._options(effort, instructions, temperature, max_new_tokens)
        owner = self.owner(request)  # the database work and the claim run off the event loop:
        watch = await anyio.to_thread.run_sync(self.chat.send, owner, conversation_id or None, text, opts)
        async for out in self._relay(watch):
            yield out

    async def regenerate(self, conversation_id, effort, instructions, temperature, max_new_tokens,
                         request: gr.Request):
        if not conversation_id:
            raise NotFoundError("Open or start a conversation first.")
        opts = self._options(effort, instructions, temperature, max_new_tokens)
        owner = self.owner(request)
        watch = await anyio.to_thread.run_sync(self.chat.regenerate, owner, conversation_id, opts)
        async for out in self._relay(watch):
            yield out

    async def edit(self, conversation_id, effort, instructions, temperature, max_new_tokens,
                   edit: gr.EditData, request: gr.Request):
        owner = self.owner(request)
        opts = self._options(effort, instructions, temperature, max_new_tokens)

        def start():
            positions = render_history(self.conversations.open(owner, conversation_id).messages).positions
            index = edit.index if isinstance(edit.index, int) else edit.index[0]
            position = positions[index] if 0 <= index < len(positions) else None
            return self.chat.edit(owner, conversation_id, position, edit.value, opts)

        async for out in self._relay(await anyio.to_thread.run_sync(start)):
            yield out

    def stop(self, conversation_id, request: gr.Request) -> None:
        self.chat.stop(self.owner(request), conversation_id or None)

    async def _follow(self, conversation_id, request: gr.Request, stored_if_idle: bool):
        """What is written so far of the conversation's answer in progress, then the live stream."""
        owner = self.identity.owner_or_none(request)
        watch = None
        if owner and conversation_id:
            watch = await anyio.to_thread.run_sync(self.chat.attach, owner, conversation_id)  # marks it seen
        if watch is not None:
            async for out in self._relay(watch, clear_message=False):
                yield out
        elif owner and conversation_id and stored_if_idle:
            conv = await anyio.to_thread.run_sync(self.conversations.open, owner, conversation_id)
            yield render_history(conv.messages).rows, hidden_live(), conversation_id, gr.skip()
        else:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()

    async def follow(self, conversation_id, request: gr.Request):
        """The page, right after opening a conversation (click, reload, a second tab, another device):
        the live stream if an answer is in progress; nothing more to do otherwise."""
        async for out in self._follow(conversation_id, request, stored_if_idle=False):
            yield out

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
        return [(c.title + (WRITING if c.id in writing else NEW_ANSWER if c.id in unseen else ""), c.id)
                for c in self.conversations.list(owner)]

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
        s = conv.settings
        return (render_history(conv.messages).rows, hidden_live(), conv.id, conv.title,
                s.get("effort", DEFAULT_EFFORT), s.get("instructions", ""), gr.Radio(value=conv.id))

    def load(self, request: gr.Request):
        """Page load: the sidebar, and the conversation named by ?c= if it is the user's.

        ?copy=<token> (the shared page's "Copy into a new chat") asks first: a link must not put
        someone else's conversation into your chats by itself.
        """
        no_copy = (gr.Row(visible=False), gr.skip(), "")
        if not self.identity.signed_in(request):
            return [], hidden_live(), "", "", gr.skip(), gr.skip(), gr.Radio(choices=[]), *no_copy
        params = dict(request.query_params) if request is not None else {}
        ask = self._ask_copy(params["copy"]) if params.get("copy") else no_copy
        sidebar = self.sidebar(request)
        if params.get("c"):
            try:
                opened = self.open(params["c"], request)
                return (*opened[:-1], gr.Radio(choices=sidebar.choices, value=opened[2]), *ask)
            except NotFoundError as exc:
                gr.Warning(exc.user_message)
        return [], hidden_live(), "", "", gr.skip(), gr.skip(), sidebar, *ask

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
WRITING, NEW_ANSWER = " · writing…", " · new answer"  # sidebar marks


def hidden_live():
    """The live panel, emptied and hidden: a conversation opens without another's answer under it."""
    return gr.Chatbot(value=[], visible=False)


def wire_turns(p: Page, h: Handlers, concurrency: int) -> list:
    """Send, regenerate, edit (streamed into the live panel), stop, and following a turn already
    in progress. Returns the page's relays: events that only show a turn (cancelling one never
    stops the turn itself)."""
    opts = [p.effort, p.instructions, p.temperature, p.max_new_tokens]
    out = [p.chatbot, p.live, p.conversation_id, p.message]
    stream = dict(STREAM, concurrency_limit=concurrency)

    def then_sidebar(event):
        event.then(user_errors(h.sidebar), None, p.conversations, api_visibility="private")
        return event

    relays = [
        then_sidebar(p.send.click(user_errors(h.send), [p.message, p.conversation_id, *opts], out,
                                  api_name="send", **stream)),
        then_sidebar(p.message.submit(user_errors(h.send), [p.message, p.conversation_id, *opts], out,
                                      api_visibility="private", **stream)),
        then_sidebar(p.regenerate.click(user_errors(h.regenerate), [p.conversation_id, *opts], out,
                                        api_name="regenerate", **stream)),
        then_sidebar(p.chatbot.retry(user_errors(h.regenerate), [p.conversation_id, *opts], out,
                                     api_visibility="private", **stream)),
        # Page only: the edit arrives as the chatbot's event data, which an API call cannot carry.
        then_sidebar(p.chatbot.edit(user_errors(h.edit), [p.conversation_id, *opts], out,
                                    api_visibility="private", **stream)),
        # /attach: a script (or a page) follows the answer in progress of a conversation
        p.attach.click(user_errors(h.attach), [p.conversation_id], out, api_name="attach", **stream),
    ]
    p.stop.click(user_errors(h.stop), [p.conversation_id], None, api_name="stop", queue=False)
    return relays


def wire_sidebar(p: Page, h: Handlers, relays: list) -> None:
    """Open, list, search, new chat, rename, delete, export; the ?c= address of the open chat.
    Opening another conversation (or a new chat) drops the live panel of the one shown before."""
    out = [p.chatbot, p.live, p.conversation_id, p.message]
    follow = dict(fn=user_errors(h.follow), inputs=[p.conversation_id], outputs=out, api_visibility="private",
                  **STREAM)
    p.conversation_id.change(None, [p.conversation_id], None, js=SET_URL_JS, api_visibility="private")
    opened = [p.chatbot, p.live, p.conversation_id, p.title, p.effort, p.instructions, p.conversations]
    for picker in (p.conversations, p.search_results):
        relays.append(picker.input(user_errors(h.open), [picker], opened, api_visibility="private").then(**follow))
    asking = [p.copy_row, p.copy_note, p.copy_token]
    relays.append(p.demo.load(user_errors(h.load), None, opened + asking, api_name="load").then(**follow))
    p.copy_confirm.click(user_errors(h.copy_confirmed), [p.copy_token], opened + [p.copy_row, p.copy_token],
                         api_visibility="private")
    p.logout.click(None, js="() => fetch('signout', {method: 'POST'}).then(() => window.location.reload())")
    p.copy_cancel.click(h.copy_cancelled, None, [p.copy_row, p.copy_token], api_visibility="private")
    for leave in (p.conversations.input, p.search_results.input, p.new_chat.click, p.confirm_delete.click):
        leave(None, None, None, cancels=relays, api_visibility="private")  # stop showing, never stop the turn
    gr.api(user_errors(h.api_open), api_name="open_conversation")
    gr.api(user_errors(h.api_list), api_name="list_conversations")
    p.new_chat.click(h.new_chat, None, [p.chatbot, p.live, p.conversation_id, p.title, p.conversations],
                     api_name="new_chat")
    p.sidebar_timer.tick(user_errors(h.refresh_sidebar), p.sidebar_shown, [p.conversations, p.sidebar_shown],
                         api_visibility="private", show_progress="hidden")
    search = [p.search_query, p.search_reasoning]
    p.search_query.change(user_errors(h.search), search, p.search_results, api_name="search",
                          show_progress="hidden")
    p.search_reasoning.change(user_errors(h.search), search, p.search_results, api_visibility="private")
    p.rename.click(user_errors(h.rename), [p.conversation_id, p.title], p.conversations, api_name="rename")
    p.delete.click(lambda: gr.Row(visible=True), None, p.confirm_row, api_visibility="private")
    p.cancel_delete.click(lambda: gr.Row(visible=False), None, p.confirm_row, api_visibility="private")
    p.confirm_delete.click(user_errors(h.delete), [p.conversation_id],
                           [p.chatbot, p.live, p.conversation_id, p.title, p.conversations, p.confirm_row],
                           api_name="delete"
                           ).then(user_errors(h.shares.links), None, p.share_links,  # its links went with it
                                  api_visibility="private")
    # The page downloads from the owner-checked /export route; the API gets the text itself.
    for button, kind, handler in ((p.export_json, "json", h.export_json), (p.export_md, "markdown", h.export_markdown)):
        button.click(None, [p.conversation_id], None, js=DOWNLOAD_JS.replace("KIND", kind), api_visibility="private")
        gr.api(user_errors(handler), api_name=f"export_{'json' if kind == 'json' else 'markdown'}")


def wire_status(p: Page, host, identity: Identity, details: bool) -> None:
    """The banner: model loading progress, then what runs; the message box opens when ready."""
    def poll_status(request: gr.Request):
        s, signed_in = host.status(), identity.signed_in(request)
        text, ready = status_markdown(s, details), s.state == "ready" and signed_in
        if not signed_in:
            text += "\n\n**Sign in with Hugging Face** (the button above) to start chatting."
        return text, gr.Textbox(interactive=ready), gr.Timer(active=s.state == "loading")

    outputs = [p.status, p.message, p.timer]
    p.timer.tick(poll_status, None, outputs, api_name="status", show_progress="hidden")
    p.demo.load(poll_status, None, outputs, api_visibility="private")


def wire(p: Page, *, chat: ChatService, conversations: Conversations, sharing, host, identity: Identity,
         concurrency: int, details: bool) -> Handlers:
    """All of the page's events (call inside `with page.demo:`)."""
    share_handlers = ShareHandlers(sharing, identity)
    h = Handlers(chat, conversations, identity, share_handlers)
    wire_sidebar(p, h, wire_turns(p, h, concurrency))
    wire_sharing(p, share_handlers)
    wire_status(p, host, identity, details)
    return h

"""The sidebar: open, list, search, new chat, rename, delete, export, a shared chat copied in, and the
page's ?c= address. Its handlers return named outputs (dicts keyed by component)."""

from __future__ import annotations

import json

import gradio as gr

from core.config import DEFAULT_EFFORT
from core.errors import InputError, NotFoundError
from core.records import MessageStatus
from ui.errors import user_errors
from ui.identity import Identity
from ui.layout import NEW_ANSWER, NOTIFY_JS, WRITING, Page
from ui.relay import STREAM, Relay
from ui.render import escape_html, render_history
from ui.sharing import ShareHandlers

SET_URL_JS = """(id) => { const u = new URL(window.location.href);
  if (id) { u.searchParams.set('c', id); } else { u.searchParams.delete('c'); }
  u.searchParams.delete('copy');  // a shared chat is copied once, not on every reload
  window.history.replaceState(null, '', u); }"""
DOWNLOAD_JS = "(id) => { if (id) { window.location.assign('export/' + id + '/KIND'); } }"
# Picking another conversation changes the page's conversation id in the browser, at the click, before the
# relays it cancels run their `settle` (ui/functions.py), which reads that id: a settle of the conversation
# left, answered after the new one was shown, painted the old chat over it. (New chat is a server call:
# `Sidebar.new_chat` tells the relay which conversation the page left, for settles already on their way.)
PICKED_JS = "(picked) => String(picked || '').split(':')[0]"  # a search match is "<conversation>:<message>"


class Sidebar:
    def __init__(self, p: Page, chat, conversations, identity: Identity, shares: ShareHandlers, relay: Relay):
        self.p, self.chat, self.conversations, self.shares = p, chat, conversations, shares
        self.relay = relay  # what a page was sent, and left: `settle` does not send it (again)
        self.owner, self.identity = identity.owner, identity

    def choices(self, request: gr.Request) -> list[tuple[str, str]]:
        """(label, id) per conversation; the label says when an answer is being written or came in unseen."""
        owner = self.identity.owner_or_none(request)
        if not owner:
            return []
        writing, unseen = self.chat.writing(owner), self.chat.unseen(owner)
        return [(title + (WRITING if cid in writing else NEW_ANSWER if cid in unseen else ""), cid)
                for cid, title in self.conversations.titles(owner)]

    def listed(self, request: gr.Request) -> dict:
        """The list, and what the page remembers it shows (the timer compares against it)."""
        choices = self.choices(request)
        return {self.p.conversations: gr.Radio(choices=choices), self.p.sidebar_shown: [list(c) for c in choices]}

    def refresh(self, shown, request: gr.Request) -> dict:
        """The timer's refresh: an update only when the list changed (no flicker, no needless work)."""
        choices = [list(c) for c in self.choices(request)]
        if choices == shown:
            return {self.p.conversations: gr.skip(), self.p.sidebar_shown: gr.skip()}
        return {self.p.conversations: gr.Radio(choices=[tuple(c) for c in choices]), self.p.sidebar_shown: choices}

    def _cleared(self) -> dict:
        p = self.p
        return {p.chatbot: [], p.live: [], p.conversation_id: "", p.title: ""}

    def open(self, conversation_id, request: gr.Request) -> dict:
        """Show a stored conversation; an answer in progress in it is followed by `follow_opened` next."""
        p, owner = self.p, self.owner(request)
        conv = self.conversations.open(owner, conversation_id)  # `follow_opened`, next, marks it seen
        messages = conv.messages
        if messages and messages[-1].status == MessageStatus.STREAMING and conv.id in self.chat.writing(owner):
            messages = messages[:-1]  # the answer being written shows in the live panel, not twice
        s = conv.settings
        tools = [t for t in s.get("tools", self.chat.default_tools()) if t in self.chat.toolbox.names]
        functions = json.dumps(s["functions"], indent=1, ensure_ascii=False) if s.get("functions") else ""
        rows = self.relay.painted(request, conv.id, render_history(messages).rows)
        return {p.chatbot: rows, p.live: [], p.conversation_id: conv.id, p.title: conv.title,
                p.effort: s.get("effort", DEFAULT_EFFORT), p.instructions: s.get("instructions", ""), p.tools: tools,
                p.functions: functions, p.conversations: gr.Radio(value=conv.id)}

    def new_chat(self, conversation_id, request: gr.Request) -> dict:
        """New chat: the page emptied, the function box of a call left waiting hidden (it belongs to the
        conversation left, which still waits). The conversation left is remembered for this page, so that
        a `settle` of it still on its way paints nothing over the new chat."""
        p = self.p
        self.relay.leave(request, conversation_id)
        return {**self._cleared(), p.conversations: gr.Radio(value=None), p.function_row: gr.Row(visible=False),
                p.function_note: "", p.function_result: ""}

    def open_match(self, match, request: gr.Request) -> dict:
        """A search match ("<conversation id>:<message id>"): its conversation, on the branch the match is on
        (unless an answer is being written there: then as it is)."""
        conversation_id, _, message_id = str(match or "").partition(":")
        try:
            self.chat.show_branch(self.owner(request), conversation_id, int(message_id))
        except (InputError, ValueError):
            pass  # opened on the branch shown
        return self.open(conversation_id, request)

    def load(self, request: gr.Request) -> dict:
        """Page load: the sidebar, and the conversation named by ?c= if it is the user's.

        ?copy=<token> (the shared page's "Copy into a new chat") asks first: a link must not put
        someone else's conversation into your chats by itself.
        """
        p = self.p
        if not self.identity.signed_in(request):
            return {**self._cleared(), p.conversations: gr.Radio(choices=[]), **self._no_copy()}
        params = dict(request.query_params) if request is not None else {}
        ask = self._ask_copy(params["copy"]) if params.get("copy") else self._no_copy()
        if params.get("c"):
            try:
                opened = self.open(params["c"], request)
                return {**opened, p.conversations: self._picked(opened, request), **ask}
            except NotFoundError as exc:
                gr.Warning(exc.user_message)
        return {**self._cleared(), p.tools: self.chat.default_tools(),
                p.conversations: gr.Radio(choices=self.choices(request)), **ask}

    def _no_copy(self) -> dict:
        return {self.p.copy_row: gr.Row(visible=False), self.p.copy_token: ""}

    def _ask_copy(self, token: str) -> dict:
        try:
            title = self.shares.title(token)
        except NotFoundError as exc:
            gr.Warning(exc.user_message)
            return self._no_copy()
        return {self.p.copy_row: gr.Row(visible=True), self.p.copy_token: token,
                self.p.copy_note: f"Copy the shared conversation “{escape_html(title)}” into a new chat of yours?"}

    def copy_confirmed(self, token, request: gr.Request) -> dict:
        opened = self.open(self.shares.copy(token, request), request)
        return {**opened, self.p.conversations: self._picked(opened, request), **self._no_copy()}

    def _picked(self, opened: dict, request: gr.Request):
        """The list, with the conversation just opened picked in it."""
        return gr.Radio(choices=self.choices(request), value=opened[self.p.conversation_id])

    def copy_cancelled(self) -> dict:
        return self._no_copy()

    def rename(self, conversation_id, title, request: gr.Request):
        self.conversations.rename(self.owner(request), conversation_id, title)
        return gr.Radio(choices=self.choices(request))

    def delete(self, conversation_id, request: gr.Request) -> dict:
        owner = self.owner(request)
        self.chat.stop(owner, conversation_id)  # an answer being written goes with its conversation
        self.conversations.delete(owner, conversation_id)
        return {**self._cleared(), self.p.conversations: gr.Radio(choices=self.choices(request)),
                self.p.confirm_row: gr.Row(visible=False)}

    def search(self, query, include_reasoning, request: gr.Request):
        if not (query or "").strip():
            return gr.Radio(choices=[], visible=False)
        found = self.conversations.search(self.owner(request), query, bool(include_reasoning))
        return gr.Radio(choices=found, value=None, visible=True,
                        label=f"Matches ({len(found)})" if found else "No matches")

    def api_open(self, conversation_id: str, request: gr.Request) -> dict:
        """A conversation as data (messages with reasoning, status and stats)."""
        return self.conversations.as_data(self.owner(request), conversation_id)

    def api_list(self, request: gr.Request) -> list[dict]:
        """The user's conversations, newest first."""
        return [{"id": c.id, "title": c.title, "updated": c.updated}
                for c in self.conversations.list(self.owner(request))]

    def export_json(self, conversation_id: str, request: gr.Request) -> str:
        """The conversation as JSON text (the page downloads it from /export/<id>/json instead)."""
        return self.conversations.export(self.owner(request), conversation_id, "json")[1]

    def export_markdown(self, conversation_id: str, request: gr.Request) -> str:
        """The conversation as Markdown text."""
        return self.conversations.export(self.owner(request), conversation_id, "markdown")[1]


def wire_sidebar(p: Page, s: Sidebar, relay: Relay, relays: list, also: list[dict] = ()):
    """Opening another conversation (or a new chat) drops the live panel of the one shown before.
    `also`: more relays to chain after opening one (a comparison in progress). Returns the page-load
    event, which sets which conversation is open (none, or ?c=)."""
    p.conversation_id.change(None, [p.conversation_id], None, js=SET_URL_JS, api_visibility="private")
    follow = dict(fn=user_errors(relay.follow_opened), inputs=[p.conversation_id], outputs=[p.live],
                  postprocess=False, api_visibility="private", **STREAM)
    opened = [p.chatbot, p.live, p.conversation_id, p.title, p.effort, p.instructions, p.tools, p.functions,
              p.conversations]
    for picker, opener in ((p.conversations, s.open), (p.search_results, s.open_match)):
        event = picker.input(user_errors(opener), [picker], opened, api_visibility="private")
        relays += [event.then(**follow)] + [event.then(**more) for more in also]
    copying = [p.copy_row, p.copy_note, p.copy_token]
    loaded = p.demo.load(user_errors(s.load), None, opened + copying, api_name="load")
    relays += [loaded.then(**follow)] + [loaded.then(**more) for more in also]
    p.copy_confirm.click(user_errors(s.copy_confirmed), [p.copy_token], opened + [p.copy_row, p.copy_token],
                         api_visibility="private")
    p.notify.click(None, js=NOTIFY_JS, api_visibility="private")
    p.logout.click(None, js="() => fetch('signout', {method: 'POST'}).then(() => window.location.reload())")
    p.copy_cancel.click(s.copy_cancelled, None, [p.copy_row, p.copy_token], api_visibility="private")
    # Leaving stops showing (the relays), never the turn.
    for picker in (p.conversations, p.search_results):
        picker.input(None, [picker], [p.conversation_id], js=PICKED_JS, cancels=relays, api_visibility="private")
    p.new_chat.click(user_errors(s.new_chat), [p.conversation_id],
                     [p.chatbot, p.live, p.conversation_id, p.title, p.conversations, p.function_row,
                      p.function_note, p.function_result],
                     cancels=relays, queue=False, api_visibility="private", show_progress="hidden")
    p.confirm_delete.click(None, None, None, cancels=relays, api_visibility="private")  # its id is still read
    gr.api(user_errors(s.api_open), api_name="open_conversation")
    gr.api(user_errors(s.api_list), api_name="list_conversations")
    p.sidebar_timer.tick(user_errors(s.refresh), p.sidebar_shown, [p.conversations, p.sidebar_shown],
                         api_visibility="private", show_progress="hidden", queue=False)  # a quick read
    search = [p.search_query, p.search_reasoning]
    p.search_query.change(user_errors(s.search), search, p.search_results, api_name="search", show_progress="hidden")
    p.search_reasoning.change(user_errors(s.search), search, p.search_results, api_visibility="private")
    p.rename.click(user_errors(s.rename), [p.conversation_id, p.title], p.conversations, api_name="rename")
    p.delete.click(lambda: gr.Row(visible=True), None, p.confirm_row, api_visibility="private")
    p.cancel_delete.click(lambda: gr.Row(visible=False), None, p.confirm_row, api_visibility="private")
    p.confirm_delete.click(user_errors(s.delete), [p.conversation_id],
                           [p.chatbot, p.live, p.conversation_id, p.title, p.conversations, p.confirm_row],
                           api_name="delete"
                           ).then(user_errors(s.shares.links), None, p.share_links,  # its links went with it
                                  api_visibility="private")
    # The page downloads from the owner-checked /export route; the API gets the text itself.
    for button, kind, handler in ((p.export_json, "json", s.export_json), (p.export_md, "markdown", s.export_markdown)):
        button.click(None, [p.conversation_id], None, js=DOWNLOAD_JS.replace("KIND", kind), api_visibility="private")
        gr.api(user_errors(handler), api_name=f"export_{'json' if kind == 'json' else 'markdown'}")
    return loaded

"""The sidebar's events: open, list, search, new chat, rename, delete, export, and the page's ?c= address.

Kept apart from ui/wiring.py (the turns) so each stays readable; the handlers are the same object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from ui.errors import user_errors
from ui.layout import Page

if TYPE_CHECKING:
    from ui.wiring import Handlers

SET_URL_JS = """(id) => { const u = new URL(window.location.href);
  if (id) { u.searchParams.set('c', id); } else { u.searchParams.delete('c'); }
  u.searchParams.delete('copy');  // a shared chat is copied once, not on every reload
  window.history.replaceState(null, '', u); }"""


DOWNLOAD_JS = "(id) => { if (id) { window.location.assign('export/' + id + '/KIND'); } }"


def wire_sidebar(p: Page, h: Handlers, relays: list, stream: dict):
    """Open, list, search, new chat, rename, delete, export; the ?c= address of the open chat.
    Opening another conversation (or a new chat) drops the live panel of the one shown before.
    Returns the page-load event, which sets which conversation is open (none, or ?c=)."""
    follow = dict(fn=user_errors(h.follow_opened), inputs=[p.conversation_id], outputs=[p.chatbot, p.live],
                  postprocess=False, api_visibility="private", **stream)
    p.conversation_id.change(None, [p.conversation_id], None, js=SET_URL_JS, api_visibility="private")
    opened = [p.chatbot, p.live, p.conversation_id, p.title, p.effort, p.instructions, p.tools, p.functions,
              p.conversations]
    for picker in (p.conversations, p.search_results):
        relays.append(picker.input(user_errors(h.open), [picker], opened, api_visibility="private").then(**follow))
    asking = [p.copy_row, p.copy_note, p.copy_token]
    loaded = p.demo.load(user_errors(h.load), None, opened + asking, api_name="load")
    relays.append(loaded.then(**follow))
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
                         api_visibility="private", show_progress="hidden", queue=False)  # a quick read
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
    return loaded

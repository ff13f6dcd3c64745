"""Share links on the page: create, list the owner's active links, revoke, copy a shared chat in.

Handlers only translate between the page and the sharing service; the read-only shared page
itself is plain HTML (ui/shared_page.py, served by ui/routes.py).
"""

from __future__ import annotations

import gradio as gr

from backend.services.conversations import Sharing
from core.errors import NotFoundError
from core.records import ShareLink
from ui.errors import user_errors
from ui.layout import Page

# The handler returns a link relative to the app ("s/<token>"); the browser makes it absolute, so the
# link is right behind any proxy or sub-path (the server cannot know the public address for sure).
ABSOLUTE_LINK_JS = "(link) => link ? new URL(link, window.location.origin + window.location.pathname).href : link"


def link_path(token: str) -> str:
    return f"s/{token}"


def link_label(link: ShareLink) -> str:
    expires = f"until {link.expires[:16].replace('T', ' ')} UTC" if link.expires else "never expires"
    reasoning = " · with reasoning" if link.include_reasoning else ""
    return f"{link.title} · {expires}{reasoning}"


class ShareHandlers:
    def __init__(self, shares: Sharing, identity):
        self.shares, self.identity = shares, identity

    def create(self, conversation_id, expiry, include_reasoning, request: gr.Request):
        if not conversation_id:
            raise NotFoundError("Open or start a conversation first, then share it.")
        owner = self.identity.owner(request)
        link = self.shares.create(owner, conversation_id, expiry, bool(include_reasoning))
        return link_path(link.token), self._radio(owner)

    def _radio(self, owner: str, value=None):
        return gr.Radio(choices=[(link_label(s), s.token) for s in self.shares.list(owner)], value=value)

    def links(self, request: gr.Request):
        owner = self.identity.owner_or_none(request)
        return self._radio(owner) if owner else gr.Radio(choices=[])

    def revoke(self, token, request: gr.Request):
        if not token:
            raise NotFoundError("Choose one of your links first.")
        owner = self.identity.owner(request)
        self.shares.revoke(owner, token)
        return self._radio(owner), ""

    def api_revoke(self, token: str, request: gr.Request) -> None:
        """Revoke one of the caller's share links by its token."""
        self.shares.revoke(self.identity.owner(request), token)

    def api_list(self, request: gr.Request) -> list[dict]:
        """The caller's active share links (token, link, conversation, expiry, reasoning included)."""
        return [dict(s.__dict__, link=link_path(s.token)) for s in self.shares.list(self.identity.owner(request))]

    def title(self, token: str) -> str:
        """The title of a shared conversation (NotFoundError once the link is gone)."""
        return self.shares.open(token).title

    def copy(self, token: str, request: gr.Request) -> str:
        """Copy a shared conversation into a new chat of the caller's; returns the new conversation id."""
        return self.shares.copy(self.identity.owner(request), token)


def wire_sharing(page: Page, handlers: ShareHandlers) -> None:
    p, h = page, handlers
    p.share_create.click(user_errors(h.create), [p.conversation_id, p.share_expiry, p.share_reasoning],
                         [p.share_link, p.share_links], api_name="create_share"
                         ).then(None, p.share_link, p.share_link, js=ABSOLUTE_LINK_JS, api_visibility="private")
    p.share_revoke.click(user_errors(h.revoke), [p.share_links], [p.share_links, p.share_link],
                         api_visibility="private")
    gr.api(user_errors(h.api_revoke), api_name="revoke_share")  # takes any token (a Radio checks its choices)
    gr.api(user_errors(h.api_list), api_name="list_shares")
    gr.api(user_errors(h.copy), api_name="copy_shared")
    p.demo.load(user_errors(h.links), None, p.share_links, api_visibility="private")

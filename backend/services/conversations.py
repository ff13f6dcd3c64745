"""What the page does with conversations besides answering: list, open, rename, delete, search,
export, and share. The page calls these services and never the repository (ui/ imports nothing
from storage); everything is scoped to the owner, as in storage.
"""

from __future__ import annotations

import json
from dataclasses import replace

from backend.observability.audit import Audit
from backend.services.chat import clean_text
from backend.services.policy import ReasoningPolicy
from core.config import MAX_SEARCH_CHARS, MAX_TITLE_CHARS
from core.errors import InputError, NotFoundError
from core.records import ConversationView, SharedConversation, ShareLink
from storage.exports import message_data
from storage.repository import Repository
from storage.shares import Shares

EXPORT_KINDS = {"json": "json", "markdown": "md"}  # kind -> file extension


class Conversations:
    def __init__(self, repo: Repository, audit: Audit | None = None, policy: ReasoningPolicy | None = None):
        self.repo, self.audit, self.policy = repo, audit or Audit(), policy or ReasoningPolicy()

    def list(self, owner: str) -> list[ConversationView]:
        """The owner's conversations, newest first (without their messages)."""
        return self.repo.list_conversations(owner)

    def titles(self, owner: str) -> list[tuple[str, str]]:
        """(id, title) of the owner's conversations, newest first: what the sidebar lists."""
        return self.repo.list_titles(owner)

    def open(self, owner: str, conversation_id: str) -> ConversationView:
        conv = self.repo.get(owner, conversation_id)
        return replace(conv, messages=self.policy.views(conv.messages), compared=self.policy.views(conv.compared))

    def answers_data(self, owner: str, conversation_id: str, ids: list[int]) -> list[dict]:
        """Answers of the conversation as data (reasoning as the policy shows it), in the order of `ids`
        (a comparison's, for the scripts' /compare)."""
        conv = self.open(owner, conversation_id)
        by_id = {m.id: m for m in conv.messages + conv.compared}
        return [message_data(by_id[i]) for i in ids if i in by_id]

    def as_data(self, owner: str, conversation_id: str) -> dict:
        """A conversation as JSON-ready data (messages with reasoning as the policy shows it, status, stats)."""
        return self.repo.export_json(owner, conversation_id, view=self.policy.views)

    def rename(self, owner: str, conversation_id: str, title: str) -> None:
        self.repo.rename(owner, conversation_id, clean_text(title, MAX_TITLE_CHARS, "title"))

    def delete(self, owner: str, conversation_id: str) -> None:
        self.repo.delete(owner, conversation_id)
        self.audit.record(owner, "delete", conversation_id=conversation_id)

    def search(self, owner: str, query: str, include_reasoning: bool) -> list[tuple[str, str]]:
        """(label, "<conversation id>:<message id>") for each conversation with a match, its newest match
        first: every branch is searched, and opening a match shows the branch it is on."""
        best: dict[str, tuple[str, int]] = {}
        include_reasoning = include_reasoning and self.policy.raw  # never find words users may not see
        for hit in self.repo.search(owner, clean_text(query, MAX_SEARCH_CHARS, "search"), include_reasoning):
            best.setdefault(hit.conversation_id, (f"{hit.title} — {hit.snippet}", hit.message_id))
        return [(label, f"{cid}:{mid}") for cid, (label, mid) in best.items()]

    def export(self, owner: str, conversation_id: str, kind: str) -> tuple[str, str]:
        """(file name, body) of a conversation as JSON or Markdown. Built from the database on each
        request and never stored: nothing to leak to another user, to outlive a deletion or to pile up."""
        if kind not in EXPORT_KINDS:
            raise InputError(f"Export as one of: {', '.join(EXPORT_KINDS)}.")
        if kind == "json":
            body = json.dumps(self.repo.export_json(owner, conversation_id, view=self.policy.views), indent=2,
                              ensure_ascii=False)
        else:
            body = self.repo.export_markdown(owner, conversation_id, view=self.policy.views)
        self.audit.record(owner, "export", conversation_id=conversation_id, format=kind)
        return f"conversation-{conversation_id[:8]}.{EXPORT_KINDS[kind]}", body


class Sharing:
    """Share links: the owner's side (create, list, revoke, copy in) and anyone's (open by token)."""

    def __init__(self, shares: Shares, audit: Audit | None = None, policy: ReasoningPolicy | None = None):
        self.shares, self.audit, self.policy = shares, audit or Audit(), policy or ReasoningPolicy()

    def create(self, owner: str, conversation_id: str, expiry: str, include_reasoning: bool) -> ShareLink:
        """A link; its snapshot holds no more of the reasoning than the policy shows (none if hidden)."""
        include_reasoning = bool(include_reasoning) and self.policy.display != "hidden"
        link = self.shares.create(owner, conversation_id, expiry, include_reasoning, view=self.policy.views)
        self.audit.record(owner, "share_create", conversation_id=conversation_id, expiry=expiry,
                          reasoning=bool(include_reasoning))
        return link

    def list(self, owner: str) -> list[ShareLink]:
        return self.shares.list(owner)

    def revoke(self, owner: str, token: str) -> None:
        self.shares.revoke(owner, token)
        self.audit.record(owner, "share_revoke", link=token[:8])

    def open(self, token: str) -> SharedConversation:
        """Anyone's (no owner in the log): the link is named by its first characters."""
        try:
            shared = self.shares.open(token)
        except NotFoundError:
            self.audit.record(None, "share_open", outcome="gone", link=token[:8])
            raise
        self.audit.record(None, "share_open", link=token[:8])
        return shared

    def copy(self, owner: str, token: str) -> str:
        """Copy a shared conversation into a new chat of the owner's; returns its id."""
        cid = self.shares.copy(owner, token)
        self.audit.record(owner, "share_copy", conversation_id=cid, link=token[:8])
        return cid

"""Connect the page's features to the services (call inside `with page.demo:`). Each feature owns its
handlers and its events — ui/chat.py (turns), ui/compare.py (Compare efforts), ui/sidebar.py, ui/functions.py, ui/sharing.py,
ui/status.py, ui/admin.py — and this module only puts them together. The page reaches conversations
through backend services (chat, conversations, sharing), never the repository."""

from __future__ import annotations

from backend.services.chat import ChatService
from backend.services.conversations import Conversations
from ui.admin import wire_admin
from ui.chat import Chat, wire_chat
from ui.compare import CompareView, wire_compare
from ui.functions import settle_after_relays, wire_functions
from ui.identity import Identity
from ui.layout import Page
from ui.relay import Relay
from ui.sharing import ShareHandlers, wire_sharing
from ui.sidebar import Sidebar, wire_sidebar
from ui.status import wire_status


def wire(p: Page, *, chat: ChatService, conversations: Conversations, sharing, host, identity: Identity,
         concurrency: int, details: bool, admin=None) -> Chat:
    shares = ShareHandlers(sharing, identity)
    relay = Relay(p, chat, conversations, identity)
    sidebar = Sidebar(p, chat, conversations, identity, shares, relay)
    turns = Chat(p, chat, conversations, relay, sidebar)
    starts = []  # the page's turn starts: one that fails (the model restarting, say) reads the banner again
    relays, then_follow = wire_chat(p, turns, concurrency, starts)
    functions = wire_functions(p, turns, then_follow)
    relay.compare = CompareView(p, chat, conversations, relay, sidebar)  # `settle` shows a stored comparison
    compare_follow = wire_compare(p, relay.compare, relays, concurrency, starts)
    loaded = wire_sidebar(p, sidebar, relay, relays, also=[compare_follow])
    settle_after_relays(p, functions, relay, relays)
    wire_sharing(p, shares)
    wire_status(p, host, identity, details, chat.default_tools, chat.default_temperature, loaded, starts)
    if admin is not None:
        wire_admin(p.admin, p.demo, admin, identity)
    return turns

"""The Admin accordion: shown only to users named in --admins (the page asks the server on load;
the data comes from backend/services/admin.py, which checks again)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ui.errors import user_errors

USAGE = ["user", "answers", "prompt_tokens", "completion_tokens", "last"]
IN_PROGRESS = ["user", "conversation", "effort", "steps", "answer_chars", "watchers"]
RECENT = ["at", "user", "action", "outcome", "conversation", "effort", "tokens", "detail"]
SERVERS = ["server", "transport", "state", "tools", "restarts", "problem"]


@dataclass
class AdminPanel:
    box: gr.Accordion
    queue: gr.Markdown
    usage: gr.Dataframe
    in_progress: gr.Dataframe
    recent: gr.Dataframe
    servers: gr.Dataframe
    refresh: gr.Button


def build_admin() -> AdminPanel:
    with gr.Accordion("Admin", open=False, visible=False, elem_id="admin") as box:
        queue = gr.Markdown(elem_id="admin-queue")
        usage = gr.Dataframe(headers=USAGE, label="Usage per user, last 24 hours", interactive=False,
                             elem_id="admin-usage")
        in_progress = gr.Dataframe(headers=IN_PROGRESS, label="Answers being written now", interactive=False,
                                   elem_id="admin-turns")
        recent = gr.Dataframe(headers=RECENT, label="Latest audit entries", interactive=False, elem_id="admin-audit")
        servers = gr.Dataframe(headers=SERVERS, label="MCP servers (--mcp-config)", interactive=False,
                               elem_id="admin-servers")
        refresh = gr.Button("Refresh", size="sm", elem_id="admin-refresh")
    return AdminPanel(box, queue, usage, in_progress, recent, servers, refresh)


def _rows(items: list[dict], columns: list[str]) -> list[list]:
    return [[item.get(c, "") for c in columns] for item in items] or [["" for _ in columns]]


def wire_admin(panel: AdminPanel, demo: gr.Blocks, admin, identity) -> None:
    def values(request: gr.Request):
        owner = identity.owner_or_none(request)
        if not admin.is_admin(owner):
            return gr.Accordion(visible=False), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        data = admin.overview(owner)
        q = data["queue"]
        queue = (f"**Queue:** {q['active']} of {q['max_active']} decoding, {q['waiting']} of {q['max_waiting']} "
                 "waiting" if q else "**Queue:** the model is not loaded yet")
        return (gr.Accordion(visible=True), queue, _rows(data["usage"], USAGE),
                _rows(data["in_progress"], IN_PROGRESS), _rows(data["recent"], RECENT),
                _rows(data["tool_servers"], SERVERS))

    outputs = [panel.box, panel.queue, panel.usage, panel.in_progress, panel.recent, panel.servers]
    demo.load(user_errors(values), None, outputs, api_visibility="private")
    panel.refresh.click(user_errors(values), None, outputs, api_visibility="private")

"""Build the page's components (no events here: ui/wiring.py connects them)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from core.config import (
    DEFAULT_EFFORT,
    DEFAULT_TEMPERATURE,
    EFFORTS,
    MAX_NEW_TOKENS_LIMIT,
    SHARE_LINK_EXPIRIES,
    TEMPERATURE_RANGE,
)
from ui.admin import AdminPanel, build_admin
from ui.compare_panel import BUTTON, ComparePanel, build_compare

SIDEBAR_REFRESH_S = 3.0
FUNCTIONS_EXAMPLE = ('[{"name": "get_weather", "description": "Current weather in a city", "parameters": '
                     '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]')

# An IME composition (Japanese, Chinese input) is confirmed with Enter: that Enter must not send.
# Chromium gives it keyCode 229 and no keypress, so Gradio's Textbox already ignores it there
# (tests/test_browser_turns.py checks); browsers that report it otherwise (Safari sends the
# confirming keydown after compositionend, keyCode 229) are stopped here, before Gradio sees it.
WRITING, NEW_ANSWER = " · writing…", " · new answer"  # the sidebar's marks (ui/sidebar.py)
NOTIFY_JS = "() => { if (window.Notification) { Notification.requestPermission(); } }"

HEAD = """<script>
for (const kind of ['keydown', 'keypress']) {
  document.addEventListener(kind, (e) => {
    if (e.key === 'Enter' && (e.isComposing || e.keyCode === 229) && e.target.closest?.('#message')) {
      e.stopImmediatePropagation();
    }
  }, true);
}
// "‹ 2 / 3 ›" under a message with siblings: its arrows are links to #branch-<message id> (ui/render.py).
// A click shows that branch: the id goes into the hidden #branch-target box, whose change the server
// answers (ui/chat.py); the time makes a second click on the same arrow a change too.
document.addEventListener('click', (e) => {
  const link = e.target.closest?.('#chat a[href*="#branch-"]');
  if (!link) return;
  e.preventDefault();
  e.stopImmediatePropagation();
  const box = document.querySelector('#branch-target textarea, #branch-target input');
  if (!box) return;
  box.value = link.getAttribute('href').split('#branch-')[1] + ':' + Date.now();
  box.dispatchEvent(new Event('input', {bubbles: true}));
}, true);
// A phone's screen is too narrow for the sidebar beside the chat (Gradio lays it over the chat): there it
// starts closed (its arrow opens it).
if (window.matchMedia('(max-width: 768px)').matches) {
  let clicked = 0;  // the toggle works once the page has hydrated: click again until the sidebar has closed
  const closeSidebar = new MutationObserver(() => {
    const sidebar = document.querySelector('.sidebar');
    if (!sidebar) return;
    if (!sidebar.classList.contains('open')) { if (clicked) closeSidebar.disconnect(); return; }
    if (Date.now() - clicked > 300) { clicked = Date.now(); sidebar.querySelector('.toggle-button')?.click(); }
  });
  closeSidebar.observe(document.documentElement, {subtree: true, childList: true, attributes: true});
  setTimeout(() => closeSidebar.disconnect(), 30000);  // never fight a user who opened it again
}
// One answer, one bubble, one copy button (ui/render.py): Gradio's copy of a group would join the fold's
// titles and the stats line to the answer; this copies the answer's text alone (what the user came for).
document.addEventListener('click', (e) => {
  const button = e.target.closest?.('.message-buttons-left button[title="Copy message"]');
  if (!button || !button.closest('#chat, #live, [id^="compare-"]')) return;
  const row = button.closest('.message-buttons')?.previousElementSibling;
  const parts = [...(row?.querySelectorAll('.bot.message > .message') || [])]
    .filter((m) => !m.querySelector('.thought-group, a[href*="#branch-"], .message-content p > sub'))
    .map((m) => (m.querySelector('.message-content')?.innerText || '').trim()).filter(Boolean);
  if (!parts.length) return;  // nothing but steps: Gradio's own copy
  e.preventDefault();
  e.stopImmediatePropagation();
  const text = parts.join('\\n\\n');
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text);
  } else {  // plain http on another host: the old way
    const area = document.createElement('textarea');
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  button.animate([{opacity: 0.3}, {opacity: 1}], 500);
}, true);
// A finished answer is noticed (ui/sidebar.py marks a conversation NEW_ANSWER when its answer ended with no
// page watching): the tab title counts those, plus answers that ended on screen while the tab was in the
// background (the live panel emptied); with the user's permission (#notify) a notification names each.
(() => {
  const NEW = 'NEW_ANSWER_MARK';
  let announced = new Set(), away = 0, writing = false, pending = false;
  const notify = (title) => {
    if (window.Notification && Notification.permission === 'granted') {
      new Notification('gpt-oss chat: an answer finished', {body: title || 'New chat', tag: title});
    }
  };
  const shownTitle = () => ((document.querySelector('#conversations label:has(input:checked)') || {}).innerText || '')
    .trim().replace(NEW, '').replace('WRITING_MARK', '');
  function check() {
    pending = false;
    const nowWriting = !!document.querySelector('#live [data-testid="bot"]');
    if (writing && !nowWriting && document.hidden) { away += 1; notify(shownTitle()); }
    writing = nowWriting;
    const marked = [...document.querySelectorAll('#conversations label')].map((l) => l.innerText.trim())
      .filter((t) => t.endsWith(NEW)).map((t) => t.slice(0, -NEW.length));
    for (const t of marked) { if (!announced.has(t)) notify(t); }
    announced = new Set(marked);
    const count = marked.length + away, base = document.title.replace(/^\(\d+\) /, '');
    const title = (count ? '(' + count + ') ' : '') + base;
    if (document.title !== title) document.title = title;
    const ask = document.querySelector('#notify');
    if (ask) ask.style.display = (window.Notification && Notification.permission === 'default') ? '' : 'none';
  }
  const later = () => { if (!pending) { pending = true; setTimeout(check, 200); } };
  document.addEventListener('visibilitychange', () => { if (!document.hidden) { away = 0; later(); } });
  const watch = () => new MutationObserver(later).observe(document.body,
    {subtree: true, childList: true, characterData: true});
  if (document.body) { watch(); } else { document.addEventListener('DOMContentLoaded', watch); }
})();
</script>""".replace("NEW_ANSWER_MARK", NEW_ANSWER).replace("WRITING_MARK", WRITING)

CSS = """
#status-banner { padding: 6px 12px; border-radius: 8px; }
#status-banner.notice { background: var(--color-accent-soft); }
/* The live panel shows only while an answer is being written: hidden by its emptiness, so that no
   streaming update has to change a component's visibility (a costly update in Gradio). */
#live:not(:has([data-testid="bot"])) { display: none; }
/* One answer, one bubble (ui/render.py): the stats a quiet line under it, and "‹ 2 / 3 ›" (branch_nav)
   a quiet line with arrows big enough to hit */
#chat sub, #live sub { font-size: 0.9em; opacity: 0.7; vertical-align: baseline; }
#chat a[href*="#branch-"] { font-size: 1.3em; padding: 0 0.4em; text-decoration: none; }
#chat .bot.message > .message:has(a[href*="#branch-"]) { font-size: 0.85em; opacity: 0.85; }
/* Compare efforts (ui/compare_panel.py): shown while a comparison is (its chart drawn), and not while a
   single answer is written in the live panel */
#compare:not(:has(svg.effort-chart)), body:has(#live [data-testid="bot"]) #compare { display: none; }
[id^="compare-"] sub { font-size: 0.9em; opacity: 0.7; vertical-align: baseline; }
/* while a comparison is shown, the chat above it (which ends at the question) gives the columns room */
body:has(#compare-chart svg.effort-chart) #chat { height: auto !important; max-height: 40vh; }
"""


@dataclass(kw_only=True)
class Page:
    demo: gr.Blocks
    conversation_id: gr.Textbox
    branch_target: gr.Textbox
    status: gr.Markdown
    timer: gr.Timer
    chatbot: gr.Chatbot
    live: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    stop: gr.Button
    regenerate: gr.Button
    compare: ComparePanel
    effort: gr.Radio
    instructions: gr.Textbox
    temperature: gr.Slider
    max_new_tokens: gr.Slider
    tools: gr.CheckboxGroup
    functions: gr.Textbox
    prompt_preview: gr.Textbox
    function_row: gr.Row
    function_note: gr.Markdown
    function_result: gr.Textbox
    function_send: gr.Button
    new_chat: gr.Button
    conversations: gr.Radio
    search_query: gr.Textbox
    search_reasoning: gr.Checkbox
    search_results: gr.Radio
    title: gr.Textbox
    rename: gr.Button
    delete: gr.Button
    confirm_row: gr.Row
    confirm_delete: gr.Button
    cancel_delete: gr.Button
    export_json: gr.Button
    export_md: gr.Button
    share_expiry: gr.Dropdown
    share_reasoning: gr.Checkbox
    admin: AdminPanel
    share_create: gr.Button
    share_link: gr.Textbox
    share_links: gr.Radio
    share_revoke: gr.Button
    attach: gr.Button
    api_send: gr.Button
    api_regenerate: gr.Button
    api_tool_result: gr.Button
    logout: gr.Button
    notify: gr.Button
    copy_row: gr.Row
    copy_note: gr.Markdown
    copy_confirm: gr.Button
    copy_cancel: gr.Button
    copy_token: gr.State
    sidebar_timer: gr.Timer
    sidebar_shown: gr.State


def tools_note(unavailable: dict[str, str]) -> str:
    """Why a tool the model knows is not offered here (shown under the tool choice)."""
    return "\n".join(f"- **{name}**: {why}" for name, why in unavailable.items())


def build_layout(max_new_tokens_default: int, share_expiry: str, share_reasoning: bool, hf_login: bool,
                 password_login: bool = False, tool_names: list[str] = (),
                 unavailable_tools: dict[str, str] | None = None, reasoning_display: str = "raw") -> Page:
    with gr.Blocks(title="gpt-oss chat", fill_height=True) as demo:
        if hf_login:
            gr.LoginButton(elem_id="hf-login")  # Spaces with hf_oauth: conversations belong to the HF account
        conversation_id = gr.Textbox(visible="hidden", elem_id="conversation-id")
        branch_target = gr.Textbox(visible="hidden", elem_id="branch-target")  # set by HEAD's script
        attach = gr.Button(visible=False)  # /attach: follow a conversation's answer in progress
        api_send = gr.Button(visible=False)  # /send and /regenerate for scripts: the whole answer streamed
        api_regenerate = gr.Button(visible=False)
        api_tool_result = gr.Button(visible=False)  # /tool_result: the result of the user's own function
        sidebar_timer = gr.Timer(SIDEBAR_REFRESH_S)  # marks answers in progress and new ones
        sidebar_shown = gr.State([])
        with gr.Sidebar(open=True):
            new_chat = gr.Button("New chat", variant="primary", elem_id="new-chat")
            # POST /signout ends this browser's session only (Gradio's GET /logout ends them all)
            logout = gr.Button("Log out", size="sm", elem_id="logout", visible=password_login)
            # asks the browser's permission (a click is needed); hidden by HEAD's script once answered
            notify = gr.Button("Notify me when an answer finishes", size="sm", elem_id="notify")
            search_query = gr.Textbox(label="Search conversations", placeholder="words to find",
                                      elem_id="search-query")
            # the reasoning can be searched only where users see it
            search_reasoning = gr.Checkbox(label="Search reasoning too", value=False, visible=reasoning_display == "raw")
            search_results = gr.Radio(label="Matches", choices=[], visible=False, elem_id="search-results")
            conversations = gr.Radio(label="Conversations", choices=[], elem_id="conversations")
            with gr.Accordion("This conversation", open=False):
                title = gr.Textbox(label="Title", elem_id="title")
                rename = gr.Button("Rename", elem_id="rename")
                delete = gr.Button("Delete…", variant="stop", elem_id="delete")
                with gr.Row(visible=False) as confirm_row:
                    confirm_delete = gr.Button("Yes, delete it", variant="stop", elem_id="confirm-delete")
                    cancel_delete = gr.Button("Cancel")
                with gr.Row():
                    export_json = gr.Button("Export JSON", elem_id="export-json")
                    export_md = gr.Button("Export Markdown", elem_id="export-md")
            with gr.Accordion("Share", open=False, elem_id="share"):
                share_expiry = gr.Dropdown(list(SHARE_LINK_EXPIRIES), value=share_expiry,
                                           label="Link expires after", elem_id="share-expiry")
                share_reasoning = gr.Checkbox(
                    value=share_reasoning and reasoning_display != "hidden", elem_id="share-reasoning",
                    label="Include the reasoning's summary" if reasoning_display == "summary" else "Include the reasoning",
                    info="Off by default: raw chain of thought is not meant for end users (gpt-oss model card).",
                    visible=reasoning_display != "hidden")  # hidden: a link never holds reasoning
                share_create = gr.Button("Create read-only link", elem_id="share-create")
                share_link = gr.Textbox(label="Link (anyone with it can read this conversation as it is now: the "
                                              "branch shown)",
                                        interactive=False, buttons=["copy"], elem_id="share-link",
                                        placeholder="Create a link to see it here")
                share_links = gr.Radio(label="Your active links", choices=[], elem_id="share-links")
                share_revoke = gr.Button("Revoke the selected link", variant="stop", size="sm",
                                         elem_id="share-revoke")
        status = gr.Markdown("Starting…", elem_id="status-banner")
        # A link with ?copy=<token> asks before it puts someone else's conversation into your chats.
        with gr.Row(visible=False, elem_id="copy-row") as copy_row:
            copy_note = gr.Markdown()
            copy_confirm = gr.Button("Copy into a new chat", variant="primary", elem_id="copy-confirm")
            copy_cancel = gr.Button("Cancel", elem_id="copy-cancel")
        copy_token = gr.State("")
        timer = gr.Timer(1.0, active=False)  # started by the page load's status, while loading
        chatbot = gr.Chatbot(label="Chat", elem_id="chat", scale=1, height="70vh", editable="user",
                             sanitize_html=True, allow_tags=False, group_consecutive_messages=True,
                             feedback_options=None, buttons=["copy"])
        # The turn being written streams here, so each update carries one exchange, not the
        # whole history (Gradio re-processes a chatbot's full value on every update).
        live = gr.Chatbot(label="Writing…", elem_id="live", height="auto", max_height="50vh",
                          sanitize_html=True, allow_tags=False, group_consecutive_messages=True,
                          feedback_options=None, buttons=["copy"])
        compare = build_compare()  # "Compare efforts": low / medium / high side by side
        # An answer paused on one of the user's own functions: its call is shown above; its result goes here.
        with gr.Row(visible=False, elem_id="function-row") as function_row:
            function_note = gr.Markdown()
            function_result = gr.Textbox(label="Result of your function", lines=2, scale=4, elem_id="function-result")
            function_send = gr.Button("Send result", variant="primary", scale=1, elem_id="function-send")
        with gr.Row():
            # One line that grows: Enter sends, Shift+Enter starts a new line (as in every chat app).
            message = gr.Textbox(placeholder="Message gpt-oss… (Enter sends, Shift+Enter: new line)",
                                 show_label=False, scale=8, lines=1, max_lines=12, elem_id="message",
                                 interactive=False, submit_btn=False)
            send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
            stop = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
        with gr.Row():
            effort = gr.Radio(list(EFFORTS), value=DEFAULT_EFFORT, label="Reasoning effort", elem_id="effort")
            regenerate = gr.Button("Regenerate", elem_id="regenerate")
            # the message typed (or the one clicked in the chat, or else the last one) answered at every effort
            compare.button = gr.Button(BUTTON, elem_id="compare-efforts")
        # Per conversation: which of the deployment's tools the model may call (stored with the chat).
        tools = gr.CheckboxGroup(list(tool_names), value=[], label="Tools the model may use", elem_id="tools",
                                 info=tools_note(unavailable_tools or {}) or None,
                                 visible=bool(tool_names or unavailable_tools))
        with gr.Accordion("Settings", open=False, elem_id="settings"):
            instructions = gr.Textbox(label="Instructions (developer message)", lines=3,
                                      placeholder="e.g. Answer in French.", elem_id="instructions")
            temperature = gr.Slider(*TEMPERATURE_RANGE, value=DEFAULT_TEMPERATURE, step=0.05,
                                    label="Temperature", elem_id="temperature")
            max_new_tokens = gr.Slider(16, MAX_NEW_TOKENS_LIMIT, value=max_new_tokens_default, step=16,
                                              label="Max new tokens")
            functions = gr.Textbox(label="Your functions (JSON Schema; you type their results)", lines=4,
                                   max_lines=20, elem_id="functions", placeholder=FUNCTIONS_EXAMPLE)
            prompt_preview = gr.Textbox(label="What the model sees (system and developer messages)", lines=8,
                                        max_lines=30, interactive=False, elem_id="prompt-preview")
        admin = build_admin()  # hidden unless the signed-in user is named in --admins
    return Page(
        demo=demo, conversation_id=conversation_id, branch_target=branch_target, status=status, timer=timer, chatbot=chatbot, live=live,
        message=message, send=send, stop=stop, regenerate=regenerate, compare=compare, effort=effort, instructions=instructions,
        temperature=temperature, max_new_tokens=max_new_tokens, tools=tools, functions=functions, prompt_preview=prompt_preview,
        function_row=function_row, function_note=function_note, function_result=function_result,
        function_send=function_send,
        new_chat=new_chat, conversations=conversations,
        search_query=search_query, search_reasoning=search_reasoning, search_results=search_results, title=title,
        rename=rename, delete=delete, confirm_row=confirm_row, confirm_delete=confirm_delete,
        cancel_delete=cancel_delete, export_json=export_json, export_md=export_md,
        share_expiry=share_expiry, share_reasoning=share_reasoning, share_create=share_create,
        share_link=share_link, share_links=share_links, share_revoke=share_revoke, attach=attach, admin=admin,
        api_send=api_send,
        api_regenerate=api_regenerate, api_tool_result=api_tool_result, logout=logout, notify=notify,
        copy_row=copy_row, copy_note=copy_note, copy_confirm=copy_confirm, copy_cancel=copy_cancel,
        copy_token=copy_token, sidebar_timer=sidebar_timer, sidebar_shown=sidebar_shown)

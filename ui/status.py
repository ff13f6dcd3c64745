"""The banner: model loading progress, then what runs; the message box opens when ready."""

from __future__ import annotations

import gradio as gr

from core.config import DEFAULT_TEMPERATURE
from ui.identity import Identity
from ui.layout import Page


def status_markdown(status, details: bool = False) -> str:
    """The banner. `details`: also what failed and what to do (for the one local user, who runs the
    server; visitors of a multi-user deployment get the plain sentence and the log keeps the rest)."""
    if status.state == "ready":
        d = status.description
        text = (f"**Model:** {d.model} · **quantization:** {d.quantization} · "
                f"**engine:** {d.engine} · **device:** {d.device}")
        if d.notice:
            text += f"\n\n**Notice:** {d.notice}"
        return text
    if status.state == "failed":
        return f"**{status.error}**" + (f"\n\n{status.detail}" if details and status.detail else "")
    pct = f" — {status.fraction:.0%}" if status.fraction is not None else ""
    what = "The model's process stopped unexpectedly; restarting it…" if status.restarts else "Loading the model…"
    return f"**{what}** {status.stage}{pct}. The chat opens when it is ready."


def wire_status(p: Page, host, identity: Identity, details: bool, default_tools, default_temperature,
                loaded, starts: list) -> None:
    """The banner: model loading progress, then what runs; the message box opens when ready.

    `loaded` is the page-load event that sets which conversation is open. The banner's first answer
    (and the timer, which starts stopped) comes only after it: a message box opened before it let a
    message be sent that the load's late answer then undid (an empty chat, no conversation id), as on
    a busy server where the load waits in Gradio's queue.

    The timer runs only while the model loads (an idle tab costs nothing). A tab opened before the
    model's process stopped would go on saying "ready" through its restart: a turn start that fails
    (`starts`) reads the banner once more, which then follows the restart to its end."""
    def poll_status(request: gr.Request):
        s, signed_in = host.status(), identity.signed_in(request)
        text, ready = status_markdown(s, details), s.state == "ready" and signed_in
        if not signed_in:
            text += "\n\n**Sign in with Hugging Face** (the button above) to start chatting."
        return text, gr.Textbox(interactive=ready), gr.Timer(active=s.state == "loading")

    def model_temperature():
        """The slider starts at the model's default when that is not the layout's (the demo model has its
        own): at page load, in the same update that opens the message box, or on the tick that finds
        the model ready. Never otherwise, so a value the user set is not overwritten."""
        temperature = default_temperature()  # the layout's own until the model is ready
        return gr.skip() if temperature == DEFAULT_TEMPERATURE else temperature

    outputs = [p.status, p.message, p.timer]
    p.timer.tick(poll_status, None, outputs, api_name="status", show_progress="hidden")
    def on_load(request: gr.Request):
        return (*poll_status(request), model_temperature())

    loaded.then(on_load, None, outputs + [p.temperature], api_visibility="private")
    for start in starts:
        start.failure(poll_status, None, outputs, api_visibility="private", queue=False, show_progress="hidden")
    p.timer.tick(model_temperature, None, p.temperature, api_visibility="private", show_progress="hidden",
                 queue=False)

    def tools_when_ready(conversation_id):
        """A page opened while the model loaded ticked the tools before anyone knew which model it would
        be (the demo model has its own default): set them once it is ready, unless a chat is open."""
        if host.status().state != "ready" or conversation_id:
            return gr.skip()
        return default_tools()

    p.timer.tick(tools_when_ready, [p.conversation_id], p.tools, api_visibility="private", show_progress="hidden",
                 queue=False)


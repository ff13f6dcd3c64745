"""A bare page with the app's turn shape, for measuring Gradio alone (bench/gradio_floor.py): a direct
call that starts a turn (queue=False, no processing) and a queued stream of values already in the
page's form, launched with the app's queue settings. The benches' load client finds the same element
ids as on the real page."""

from __future__ import annotations

import gc

import gradio as gr
from starlette.responses import JSONResponse
from starlette.routing import Route

from ui.runtime import queue_events


def build(start, follow, capacity: int) -> gr.Blocks:
    """`start(text, conversation_id) -> (chat, live, conversation_id, box)`; `follow(conversation_id)`
    an async generator of (chat, live)."""
    with gr.Blocks() as demo:
        chat = gr.Chatbot(elem_id="chat")
        live = gr.Chatbot(elem_id="live")
        conversation_id = gr.Textbox(elem_id="conversation-id", visible=False)
        message = gr.Textbox(elem_id="message")
        started = message.submit(start, [message, conversation_id], [chat, live, conversation_id, message],
                                 queue=False, preprocess=False, postprocess=False)
        started.success(follow, [conversation_id], [chat, live], postprocess=False, show_progress="hidden",
                        concurrency_limit=capacity)
    return demo


def launch(demo: gr.Blocks, port: int, capacity: int) -> None:
    """As app.launch does: Gradio's queue with the app's settings, the heap frozen; a /healthz that
    says ready."""
    queue_events(demo, capacity, capacity)
    gc.freeze()
    ready = Route("/healthz", lambda request: JSONResponse({"model": "ready"}))
    demo.launch(server_name="127.0.0.1", server_port=port, quiet=True, max_threads=capacity,
                app_kwargs={"routes": [ready]})

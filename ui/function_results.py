"""The user's own functions on the page and in the API: when an answer pauses on a call to one, show
the call and a box for its result; the result sends the same answer on (`/tool_result` for scripts)."""

from __future__ import annotations

import anyio
import gradio as gr

from core.errors import NotFoundError
from ui.errors import user_errors
from ui.layout import Page
from ui.render import escape_html


class FunctionResults:
    def __init__(self, handlers):
        self.h = handlers

    def send(self, result, conversation_id, effort, instructions, temperature, max_new_tokens, tools, functions,
             request: gr.Request):
        h = self.h
        if not conversation_id:
            raise NotFoundError("Open a conversation first.")
        opts = h._options(effort, instructions, temperature, max_new_tokens, tools, functions)
        return h._started(h.chat.tool_result(h.owner(request), conversation_id, result or "", opts), request)

    async def api_send(self, conversation_id, result, effort, instructions, temperature, max_new_tokens,
                       tools=None, functions=None, request: gr.Request = None):
        """/tool_result for scripts: the result of your function call; the answer goes on, streamed."""
        h = self.h
        opts = h._options(effort, instructions, temperature, max_new_tokens, tools, functions)
        watch = await anyio.to_thread.run_sync(h.chat.tool_result, h.owner(request), conversation_id or "",
                                               result or "", opts)
        async for history, live in h._relay(watch):
            yield history, live, conversation_id

    def waiting(self, conversation_id, request: gr.Request):
        """The function box: shown with the call when the open conversation's answer waits on one."""
        owner = self.h.identity.owner_or_none(request)
        call = self.h.chat.waiting_call(owner, conversation_id) if owner else None
        if call is None:  # plain values, not gr.skip(): Gradio rebuilds a component for every skip, and
            return gr.Row(visible=False), "", ""  # this runs after every answer (the hidden box is emptied)
        name = escape_html(call["recipient"].removeprefix("functions."))
        return (gr.Row(visible=True), f"The model called your function **{name}** with "
                f"`{escape_html(call.get('arguments', ''))[:500]}`. What did it return?", "")


def wire_function_results(p: Page, h, opts: list, start: dict, then_follow) -> None:
    """The result box's Send (then the answer streams on, as after Send) and /tool_result for scripts."""
    f = FunctionResults(h)
    started = [p.chatbot, p.live, p.conversation_id, p.function_result, p.conversations, p.sidebar_shown]
    sent = p.function_send.click(user_errors(f.send), [p.function_result, p.conversation_id, *opts], started,
                                 **start)
    sent.then(lambda: gr.Row(visible=False), None, p.function_row, api_visibility="private", queue=False)
    then_follow(sent)
    p.api_tool_result.click(user_errors(f.api_send), [p.conversation_id, p.function_result, *opts],
                            [p.chatbot, p.live, p.conversation_id], api_name="tool_result", postprocess=False,
                            show_progress="hidden", concurrency_id="turns")


def show_waiting_calls(p: Page, h, relays: list) -> None:
    """After every relay (a turn ended, a conversation opened): the box, if the answer waits on a call."""
    f = FunctionResults(h)
    for event in relays:
        event.then(user_errors(f.waiting), [p.conversation_id], [p.function_row, p.function_note, p.function_result],
                   api_visibility="private", queue=False, show_progress="hidden")

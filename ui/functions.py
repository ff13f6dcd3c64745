"""The user's own functions on the page and in the API: when an answer pauses on a call to one, show
the call and a box for its result; the result sends the same answer on (`/tool_result` for scripts)."""

from __future__ import annotations

import gradio as gr

from core.errors import NotFoundError
from ui.chat import Chat, settings_inputs, started_outputs
from ui.errors import user_errors
from ui.layout import Page
from ui.relay import START, STREAM, Relay, chat_options
from ui.render import escape_html


class FunctionResults:
    def __init__(self, p: Page, c: Chat):
        self.p, self.c = p, c

    def send(self, result, conversation_id, effort, instructions, temperature, max_new_tokens, tools, functions,
             request: gr.Request):
        if not conversation_id:
            raise NotFoundError("Open a conversation first.")
        opts = chat_options(effort, instructions, temperature, max_new_tokens, tools, functions)
        watch = self.c.chat.tool_result(self.c.owner(request), conversation_id, result or "", opts)
        return self.c.started(watch, request, self.p.function_result)

    async def api_send(self, conversation_id, result, effort, instructions, temperature, max_new_tokens,
                       tools=None, functions=None, request: gr.Request = None):
        """/tool_result for scripts: the result of your function call; the answer goes on, streamed."""
        opts = chat_options(effort, instructions, temperature, max_new_tokens, tools, functions)
        async for out in self.c.whole(self.c.chat.tool_result, self.c.owner(request), conversation_id or "",
                                       result or "", opts, conversation_id=conversation_id):
            yield out

    def waiting(self, conversation_id, request: gr.Request) -> dict:
        """The function box: shown with the call when the open conversation's answer waits on one."""
        p, owner = self.p, self.c.sidebar.identity.owner_or_none(request)
        call = self.c.chat.waiting_call(owner, conversation_id) if owner else None
        if call is None:  # plain values, not gr.skip(): Gradio rebuilds a component for every skip, and
            # this runs after every answer (the hidden box is emptied)
            return {p.function_row: gr.Row(visible=False), p.function_note: "", p.function_result: ""}
        name = escape_html(call.name)
        return {p.function_row: gr.Row(visible=True), p.function_result: "",
                p.function_note: f"The model called your function **{name}** with "
                                 f"`{escape_html(call.arguments)[:500]}`. What did it return?"}


def wire_functions(p: Page, c: Chat, then_follow) -> FunctionResults:
    """The result box's Send (then the answer streams on, as after Send) and /tool_result for scripts.
    Wired before the sidebar, whose leaving events cancel every relay registered by then."""
    f, opts = FunctionResults(p, c), settings_inputs(p)
    sent = p.function_send.click(user_errors(f.send), [p.function_result, p.conversation_id, *opts],
                                 started_outputs(p, p.function_result), **START)
    sent.then(lambda: gr.Row(visible=False), None, p.function_row, api_visibility="private", queue=False)
    then_follow(sent)
    p.api_tool_result.click(user_errors(f.api_send), [p.conversation_id, p.function_result, *opts],
                            [p.chatbot, p.live, p.conversation_id], api_name="tool_result", postprocess=False,
                            **STREAM)
    return f


def settle_after_relays(p: Page, f: FunctionResults, relay: Relay, relays: list) -> None:
    """After every relay (a turn ended, a conversation opened, a relay cancelled), one quick call: the chat
    as stored with the live panel emptied (the relays stream the live panel alone: ui/relay.py), the
    comparison that waits to be decided (or the Compare panel emptied), and the function box, shown if the
    answer waits on a call. One call, not two: each costs the app ~1 ms."""
    async def settle(conversation_id, request: gr.Request) -> dict:
        shown = await relay.settle(conversation_id, request)
        if relay.left(request, conversation_id):  # New chat meanwhile: the page shows none of it
            return {component: gr.skip() for component in outputs}
        return {**shown, **f.waiting(conversation_id, request)}

    outputs = [p.chatbot, p.live, p.function_row, p.function_note, p.function_result, *p.compare.outputs]
    for event in relays:
        event.then(user_errors(settle), [p.conversation_id], outputs, api_visibility="private", queue=False,
                   show_progress="hidden")

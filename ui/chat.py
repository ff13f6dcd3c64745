"""The chat's turns: send, regenerate, edit, stop, the prompt preview, and the whole-answer streams for
scripts (/send, /regenerate, /attach). Handlers only translate: the chat service does the work.

A turn on the page is two events, Gradio's chat idiom: a quick one stores the message, starts the
answer on the server and clears the box; then the relay (ui/relay.py) streams the answer as it is
written. Every handler that a client may call has a stable api_name (see README).
"""

from __future__ import annotations

from typing import Callable

import anyio
import gradio as gr

from core.errors import InputError, NotFoundError
from ui.errors import user_errors
from ui.layout import Page
from ui.relay import START, STREAM, Relay, chat_options
from ui.render import render_history
from ui.sidebar import Sidebar


class Chat:
    def __init__(self, p: Page, chat, conversations, relay: Relay, sidebar: Sidebar):
        self.p, self.chat, self.conversations, self.relay, self.sidebar = p, chat, conversations, relay, sidebar
        self.owner = sidebar.owner

    def started(self, watch, request: gr.Request, box) -> dict:
        """The page right after a turn started: the history with the new message, what the live panel
        shows so far, the conversation id, `box` (the message box, or the function result's) emptied,
        and the sidebar (the conversation on top, marked as being written)."""
        return {**self.relay.first(watch), box: "", **self.sidebar.listed(request)}

    def send(self, text, conversation_id, effort, instructions, temperature, max_new_tokens, tools, functions,
             request: gr.Request):
        if not (text or "").strip():
            return gr.skip()  # an empty message is simply not sent
        opts = chat_options(effort, instructions, temperature, max_new_tokens, tools, functions)
        return self.started(self.chat.send(self.owner(request), conversation_id or None, text, opts), request,
                            self.p.message)

    def regenerate(self, conversation_id, effort, instructions, temperature, max_new_tokens, tools, functions,
                   request: gr.Request):
        if not conversation_id:
            raise NotFoundError("Open or start a conversation first.")
        opts = chat_options(effort, instructions, temperature, max_new_tokens, tools, functions)
        return self.started(self.chat.regenerate(self.owner(request), conversation_id, opts), request, self.p.message)

    def edit(self, conversation_id, effort, instructions, temperature, max_new_tokens, tools, functions,
             edit: gr.EditData, request: gr.Request):
        owner = self.owner(request)
        opts = chat_options(effort, instructions, temperature, max_new_tokens, tools, functions)
        position = render_history(self.conversations.open(owner, conversation_id).messages).position_at(edit.index)
        return self.started(self.chat.edit(owner, conversation_id, position, edit.value, opts), request,
                            self.p.message)

    def show_branch(self, target, conversation_id, request: gr.Request):
        """An arrow of "‹ 2 / 3 ›" was clicked: `target` is "<message id>:<click time>" (the page's script);
        the chat shows the branch through that message from now on."""
        if not conversation_id:
            raise NotFoundError("Open or start a conversation first.")
        try:
            message_id = int(str(target).split(":")[0])
        except ValueError:
            raise InputError("Pick one of the answers to show.") from None
        owner = self.owner(request)
        self.chat.show_branch(owner, conversation_id, message_id)
        return render_history(self.conversations.open(owner, conversation_id).messages).rows

    async def whole(self, start, *args, conversation_id=None):
        """A script's turn: started off the event loop (database work and the claim), then streamed."""
        watch = await anyio.to_thread.run_sync(start, *args)
        async for out in self.relay.stream(watch, with_history=True):
            yield {**out, self.p.conversation_id: conversation_id or watch.turn.conversation_id}

    async def api_send(self, text, conversation_id, effort, instructions, temperature, max_new_tokens,
                       tools=None, functions=None, request: gr.Request = None):
        """/send for scripts: the whole answer as one stream of (chat, live, conversation id). `tools`:
        which of the server's tools the model may use (none unless named)."""
        opts = chat_options(effort, instructions, temperature, max_new_tokens, tools, functions)
        async for out in self.whole(self.chat.send, self.owner(request), conversation_id or None, text, opts):
            yield out

    async def api_regenerate(self, conversation_id, effort, instructions, temperature, max_new_tokens,
                             tools=None, functions=None, request: gr.Request = None):
        """/regenerate for scripts: the new answer as one stream."""
        if not conversation_id:
            raise NotFoundError("Open or start a conversation first.")
        opts = chat_options(effort, instructions, temperature, max_new_tokens, tools, functions)
        async for out in self.whole(self.chat.regenerate, self.owner(request), conversation_id, opts,
                                     conversation_id=conversation_id):
            yield out

    def stop(self, conversation_id, request: gr.Request) -> None:
        self.chat.stop(self.owner(request), conversation_id or None)

    def preview(self, effort, instructions, tools, functions) -> str:
        """The system and developer messages as the model will read them with these settings."""
        try:
            return self.chat.preview(chat_options(effort, instructions, 1.0, 1, tools, functions))
        except Exception as exc:  # e.g. instructions over the limit: the send will say so properly
            return f"(cannot show: {getattr(exc, 'user_message', exc)})"


def settings_inputs(p: Page) -> list:
    """The settings row, as every turn's handler takes it (after its own first inputs)."""
    return [p.effort, p.instructions, p.temperature, p.max_new_tokens, p.tools, p.functions]


def started_outputs(p: Page, box) -> list:
    return [p.chatbot, p.live, p.conversation_id, box, p.conversations, p.sidebar_shown]


def wire_chat(p: Page, c: Chat, concurrency: int, starts: list) -> tuple[list, Callable]:
    """Send, regenerate, edit (started, then streamed into the live panel by the relay), stop, the prompt
    preview, and the API's whole-answer streams. Returns the page's relays (events that only show a turn:
    cancelling one never stops the turn itself) and `then_follow`, which streams a started turn (and
    adds its start to `starts`, the page's turn starts).
    `concurrency` is high enough that a request past the worker's capacity reaches the worker and is
    refused at once ("busy") rather than parked in Gradio's queue."""
    opts, shown = settings_inputs(p), [p.chatbot, p.live]
    started = started_outputs(p, p.message)
    limit = dict(concurrency_limit=concurrency)
    relays = []
    start = START

    def then_follow(event):
        starts.append(event)
        relays.append(event.success(user_errors(c.relay.follow), [p.conversation_id], [p.live], postprocess=False,
                                    api_visibility="private", **STREAM, **limit))

    send_inputs = [p.message, p.conversation_id, *opts]
    # Scripts (registered first, so they own the plain names): /send and /regenerate stream the whole
    # answer; /attach follows one in progress.
    api_out = [p.chatbot, p.live, p.conversation_id]
    p.api_send.click(user_errors(c.api_send), send_inputs, api_out, api_name="send", postprocess=False,
                     **STREAM, **limit)
    p.api_regenerate.click(user_errors(c.api_regenerate), [p.conversation_id, *opts], api_out,
                           api_name="regenerate", postprocess=False, **STREAM, **limit)
    relays.append(p.attach.click(user_errors(c.relay.attach), [p.conversation_id], shown, api_name="attach",
                                 postprocess=False, **STREAM, **limit))
    then_follow(p.send.click(user_errors(c.send), send_inputs, started, **start))
    then_follow(p.message.submit(user_errors(c.send), send_inputs, started, **start))
    then_follow(p.regenerate.click(user_errors(c.regenerate), [p.conversation_id, *opts], started, **start))
    then_follow(p.chatbot.retry(user_errors(c.regenerate), [p.conversation_id, *opts], started, **start))
    # The edit arrives as the chatbot's event data, which an API call cannot carry: page only.
    then_follow(p.chatbot.edit(user_errors(c.edit), [p.conversation_id, *opts], started, **start))
    p.stop.click(user_errors(c.stop), [p.conversation_id], None, api_name="stop", queue=False)
    # "‹ i / n ›": the branch through another answer (or another version of an edited message)
    p.branch_target.change(user_errors(c.show_branch), [p.branch_target, p.conversation_id], [p.chatbot],
                           api_name="show_branch", show_progress="hidden")
    preview = dict(fn=c.preview, inputs=[p.effort, p.instructions, p.tools, p.functions], outputs=p.prompt_preview,
                   api_visibility="private", show_progress="hidden", queue=False)
    for changed in (p.effort.change, p.instructions.blur, p.tools.change, p.functions.blur):
        changed(**preview)
    p.demo.load(**preview)
    return relays, then_follow

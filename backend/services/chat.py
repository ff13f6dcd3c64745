"""Chat logic between the page, the database and the worker: plain data in and out.

Every turn follows the same path: clean the input, commit the user's message,
commit an empty assistant message marked `streaming`, then hand it to a LiveAnswer
(backend/serving/live.py) that streams events into it on its own thread, saving every
couple of seconds, and records how it ended. The answer belongs to the server:
pages subscribe to the turn and closing one never stops it. A crash at any point
leaves what was said in the database.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Iterator

from backend.harmony.codec import tool_message
from backend.observability.oversight import Oversight
from backend.services.agent import MAX_TOOL_CALLS, AgentLoop
from backend.services.options import ChatOptions, clean_text
from backend.services.pipeline import TurnPipeline, prompt_turns
from backend.services.policy import ReasoningPolicy
from backend.serving.live import LiveAnswer, Pace, Snapshot
from backend.serving.saver import PartialSaver
from backend.tools.toolbox import Toolbox
from core.config import (
    MAX_MESSAGE_CHARS,
    SAVE_INTERVAL_S,
)
from core.errors import GenerationError, InputError
from core.records import MessageStatus, MessageView
from core.trace import ToolCallStep
from storage.repository import Repository

log = logging.getLogger(__name__)

_CLAIM = object()  # a conversation's answer is requested but its stream has not started yet
def _placeholder(mid: int, position: int, options: ChatOptions) -> MessageView:
    """The answer about to be written, as stored before the model runs."""
    return MessageView(id=mid, position=position, role="assistant", content="", effort=options.effort,
                       status=MessageStatus.STREAMING)


@dataclass(frozen=True)
class WaitingCall:
    """A call to the user's own function that an answer paused on."""

    recipient: str  # functions.NAME
    arguments: str
    channel: str | None  # the harmony channel it was sent on (its result goes back on the same)

    @property
    def name(self) -> str:
        return self.recipient.removeprefix("functions.")


def waiting_call(m: MessageView) -> WaitingCall | None:
    """The call an answer paused on for the user's own function: a stored tool call with no result
    after it, at the end of an answer that stopped at the call."""
    if m.role != "assistant" or m.stop_reason != "call" or not m.trace or not isinstance(m.trace[-1], ToolCallStep):
        return None
    call = m.trace[-1]
    sent = next((h for h in reversed(m.harmony) if h.get("recipient") == call.recipient), {})
    return WaitingCall(call.recipient, call.arguments, sent.get("channel")) \
        if call.recipient.startswith("functions.") else None


class ChatService:
    """The page's entry point: conversations whose answers are written on the server (LiveAnswer), through
    the one turn pipeline (backend/services/pipeline.py)."""

    def __init__(self, repo: Repository, host, max_message_chars: int = MAX_MESSAGE_CHARS,
                 save_interval_s: float = SAVE_INTERVAL_S, toolbox: Toolbox | None = None,
                 max_tool_calls: int = MAX_TOOL_CALLS, oversight: Oversight | None = None,
                 policy: ReasoningPolicy | None = None):
        self.pipeline = TurnPipeline(repo, host, oversight=oversight, policy=policy, toolbox=toolbox,
                                     max_tool_calls=max_tool_calls, max_message_chars=max_message_chars)
        pl = self.pipeline  # the parts other services read (admin, sidebar, tests)
        self.repo, self.host, self.max_message_chars = pl.repo, pl.host, max_message_chars
        self.oversight, self.audit, self.policy, self.summarizer = pl.oversight, pl.oversight.audit, pl.policy, \
            pl.summarizer
        self.saver = PartialSaver(repo.save_partials, save_interval_s)
        self._turns: dict[str, object] = {}  # conversation id -> its LiveAnswer (or _CLAIM while starting)
        self._unseen: dict[str, set[str]] = {}  # owner -> conversations whose answer ended unwatched
        self._closing = False
        self._lock = threading.Lock()
        self.pace = Pace()  # one for all pages: the more that watch, the fewer updates each
        self.pace.on_update = self.oversight.metrics.page_updates.inc

    @property
    def toolbox(self) -> Toolbox:
        """The deployment's tools (the pipeline's: one toolbox for every entry point)."""
        return self.pipeline.toolbox

    @toolbox.setter
    def toolbox(self, value: Toolbox) -> None:
        self.pipeline.toolbox = value

    @property
    def save_interval_s(self) -> float:
        """How often answers being written are saved: the most a crash can lose."""
        return self.saver.interval

    @save_interval_s.setter
    def save_interval_s(self, value: float) -> None:
        self.saver.interval = value

    # -- turns -----------------------------------------------------------------------

    def _message_and_options(self, text: str, options: ChatOptions, empty: str) -> tuple[str, ChatOptions]:
        """The opening steps of every turn that brings a new user message (send, edit)."""
        text = clean_text(text, self.max_message_chars)
        if not text.strip():
            raise InputError(empty)
        return text, self.pipeline.checked(options)

    def send(self, owner: str, conversation_id: str | None, text: str,
             options: ChatOptions) -> Iterator[Snapshot]:
        text, options = self._message_and_options(text, options, "Type a message first.")
        self.oversight.check(owner)
        new = not conversation_id
        if new:  # titled by its first line when stored; nobody else can know its id yet
            conversation_id = self.repo.new_conversation_id()
        else:
            self.repo.check_owner(owner, conversation_id)  # not found for anyone else's, before any claim
        with self._claimed(conversation_id):
            history = [] if new else self.repo.get(owner, conversation_id).messages
            user = MessageView(id=0, position=len(history), role="user", content=text)
            try:  # the model only runs once the turn starts, after the message is stored below
                job = self._submit(history + [user], options)
            except BaseException:
                self.pipeline.store_user_message(owner, conversation_id, text, options, new=new, answer=False)
                raise  # e.g. still loading, or busy: the message is kept, the user can try again
            try:  # one transaction: the message, the chat's settings, the answer's placeholder
                mid = self.pipeline.store_user_message(owner, conversation_id, text, options, new=new)
            except BaseException:
                job.discard()  # its stream will never run: give the worker slot back now
                raise
            self.audit.record(owner, "send", text=text, conversation_id=conversation_id, effort=options.effort)
            return self._run_turn(owner, conversation_id, history + [user], job, _placeholder(mid, len(history) + 1,
                                                                                              options))

    def regenerate(self, owner: str, conversation_id: str, options: ChatOptions) -> Iterator[Snapshot]:
        """Answer the last user message of the branch shown again: a new answer beside the ones it had
        (each keeps its reasoning, trace and stats; the page moves between them)."""
        options = self.pipeline.checked(options)
        self.repo.check_owner(owner, conversation_id)
        self.oversight.check(owner)
        with self._claimed(conversation_id):
            path = self.repo.get(owner, conversation_id).messages
            users = [i for i, m in enumerate(path) if m.role == "user"]
            if not users:
                raise InputError("There is no message to answer yet.")
            answer = self._answer(owner, conversation_id, options, path[:users[-1] + 1])
            self.audit.record(owner, "regenerate", conversation_id=conversation_id, effort=options.effort)
            return answer

    def edit(self, owner: str, conversation_id: str, position: int, text: str,
             options: ChatOptions) -> Iterator[Snapshot]:
        """A new version of an earlier user message, answered from there: a sibling of the message it
        edits, so the branch it replaces stays one click away."""
        text, options = self._message_and_options(text, options, "An edited message cannot be empty.")
        self.repo.check_owner(owner, conversation_id)
        self.oversight.check(owner)
        with self._claimed(conversation_id):
            path = self.repo.get(owner, conversation_id).messages
            at = next((i for i, m in enumerate(path) if m.position == position and m.role == "user"), None)
            if at is None:
                raise InputError("Only your own messages can be edited.")
            parent = path[at].parent_id
            mid = self.repo.add_message(owner, conversation_id, "user", text, parent=parent)
            edited = MessageView(id=mid, position=position, role="user", content=text, parent_id=parent)
            self.audit.record(owner, "edit", text=text, conversation_id=conversation_id, effort=options.effort)
            return self._answer(owner, conversation_id, options, path[:at] + [edited])

    def show_branch(self, owner: str, conversation_id: str, message_id: int) -> None:
        """Show the branch through a message (one of several answers or edits) from now on: on every page,
        after a reload, and for the next message sent."""
        self.repo.check_owner(owner, conversation_id)  # not found for anyone else's, before any claim
        with self._claimed(conversation_id, hand_over=False):  # not while an answer is written, nor a send
            self.repo.show_branch(owner, conversation_id, message_id)

    def stop(self, owner: str, conversation_id: str | None) -> bool:
        """Stop the answer being written in this conversation (only the owner's; from any tab)."""
        if not conversation_id:
            return False
        self.repo.get(owner, conversation_id)  # raises NotFound for anyone else's
        turn = self._live_turn(conversation_id)
        if turn is None:
            return False
        turn.cancel()
        self.audit.record(owner, "stop", conversation_id=conversation_id)
        return True

    def attach(self, owner: str, conversation_id: str) -> Iterator[Snapshot] | None:
        """The live turn of a conversation (what is written so far, then each change), or None."""
        turn = self._live_turn(conversation_id)
        if turn is None or turn.owner != owner:  # the live turn names its owner: no database read then
            self.repo.check_owner(owner, conversation_id)  # raises NotFound for anyone else's
        self.seen(owner, conversation_id)
        return turn.snapshots() if turn is not None else None

    def writing(self, owner: str) -> set[str]:
        """The owner's conversations with an answer being written now."""
        with self._lock:
            return {cid for cid, t in self._turns.items() if isinstance(t, LiveAnswer) and t.owner == owner}

    def in_progress(self) -> list[dict]:
        """Every answer being written now, anyone's (the admin view): owner, conversation, so far."""
        with self._lock:
            turns = [t for t in self._turns.values() if isinstance(t, LiveAnswer)]
        out = []
        for t in turns:
            m = t.message()
            out.append({"user": t.owner, "conversation": t.conversation_id[:8], "effort": m.effort or "",
                        "steps": len(m.trace), "answer_chars": len(m.content), "watchers": t.watchers})
        return out

    def unseen(self, owner: str) -> set[str]:
        """The owner's conversations whose answer finished while no page watched it."""
        with self._lock:
            return set(self._unseen.get(owner, ()))

    def seen(self, owner: str, conversation_id: str) -> None:
        with self._lock:
            self._unseen.get(owner, set()).discard(conversation_id)

    def shutdown(self) -> None:
        """A clean stop of the server: every turn in progress is ended and saved as interrupted."""
        with self._lock:
            self._closing = True
            turns = [t for t in self._turns.values() if isinstance(t, LiveAnswer)]
        for turn in turns:
            turn.interrupt()
        self.toolbox.close()  # MCP servers end with the app

    def _live_turn(self, conversation_id: str) -> "LiveAnswer | None":
        with self._lock:
            turn = self._turns.get(conversation_id)
        return turn if isinstance(turn, LiveAnswer) else None

    # -- streaming -------------------------------------------------------------------------

    @contextmanager
    def _claimed(self, conversation_id: str, hand_over: bool = True):
        """Hold the conversation's one answer from the request on, so two tabs sending at the same
        instant cannot both pass. The LiveAnswer takes the claim over (and frees it when it ends); any
        failure before that frees it here. Not `hand_over`: a change that starts no answer (moving
        between branches) holds it only for the block."""
        with self._lock:
            if self._closing:
                raise GenerationError("The server is shutting down; your message was not sent. Try again "
                                      "in a moment.")
            if conversation_id in self._turns:
                raise InputError("An answer is still being written in this conversation: stop it or wait.")
            self._turns[conversation_id] = _CLAIM
        handed = False
        try:
            yield
            handed = hand_over
        finally:
            if not handed:
                with self._lock:
                    if self._turns.get(conversation_id) is _CLAIM:
                        del self._turns[conversation_id]

    # -- tools ---------------------------------------------------------------------------------

    def default_tools(self) -> list[str]:
        return self.pipeline.default_tools()

    def default_temperature(self) -> float:
        return self.pipeline.default_temperature()

    def preview(self, options: ChatOptions) -> str:
        """The system and developer messages exactly as the model reads them."""
        ids = self.host.codec.render([], self.pipeline.prompt_settings(options))
        return self.host.codec.decode(ids[:-2])  # without the closing <|start|>assistant

    def _submit(self, history: list[MessageView], options: ChatOptions, prior: list[dict] = ()) -> AgentLoop:
        """The turn's first generation, submitted now (busy or still loading fail here, before anything
        is stored). `prior`: the harmony messages of a turn that paused for a user function's result."""
        return self.pipeline.submit(prompt_turns(history), options, prior=prior)

    # -- the user's own functions -------------------------------------------------------------

    def waiting_call(self, owner: str, conversation_id: str | None) -> dict | None:
        """The user-function call the conversation's last answer waits on ({recipient, arguments}), if any."""
        if not conversation_id or self._live_turn(conversation_id) is not None:
            return None
        last = self.repo.last_message(owner, conversation_id)  # checked after every turn: one row, not all
        return waiting_call(last) if last is not None else None

    def tool_result(self, owner: str, conversation_id: str, output: str, options: ChatOptions) -> Iterator[Snapshot]:
        """The result of the user's own function, typed on the page or sent through the API: the model
        reads it and the same answer goes on."""
        output = clean_text(output, self.max_message_chars, "result")
        options = self.pipeline.checked(options)
        self.repo.get(owner, conversation_id)
        with self._claimed(conversation_id):
            messages = self.repo.get(owner, conversation_id).messages
            last = messages[-1] if messages else None
            call = waiting_call(last) if last is not None else None
            if call is None:
                raise InputError("No function call is waiting for a result in this conversation.")
            harmony = list(last.harmony) + [tool_message(call.recipient, call.channel, output)]
            job = self._submit(messages[:-1], options, prior=harmony)  # busy or loading: nothing changed yet
            try:
                live = self.pipeline.add_results(owner, last, harmony, [(call.recipient, output)])
            except BaseException:
                job.discard()
                raise
            live = replace(live, effort=options.effort)
            return self._run_turn(owner, conversation_id, messages[:-1], job, live)

    def _answer(self, owner: str, conversation_id: str, options: ChatOptions,
                history: list[MessageView]) -> Iterator[Snapshot]:
        """Answer a branch as stored (regenerate, edit: its last user message is already saved); the answer
        follows that message."""
        job = self._submit(history, options)
        try:
            mid = self.pipeline.store_placeholder(owner, conversation_id, options, parent=history[-1].id)
            # read back, so that the page shows "‹ i / n ›" on the new answer (and an edit) from the start
            branch = self.repo.get(owner, conversation_id, upto=mid).messages
        except BaseException:
            job.discard()  # its stream will never run: give the worker slot back now
            raise
        live = replace(_placeholder(mid, branch[-1].position, options), siblings=branch[-1].siblings)
        return self._run_turn(owner, conversation_id, branch[:-1], job, live)

    def _run_turn(self, owner: str, conversation_id: str, history: list[MessageView], job,
                  live: MessageView) -> Iterator[Snapshot]:
        live.left_out = getattr(job, "left_out", 0) or None  # said on the answer: what the model did not see
        turn = LiveAnswer(owner, conversation_id, history, live, job, saver=self.saver,
                        save=lambda m, status: self.pipeline.finish(owner, m, None, status=status),
                        finish=lambda m, done: self.pipeline.finish(owner, m, done), on_end=self._ended,
                        pace=self.pace, policy=self.policy, summarizer=self.summarizer)
        with self._lock:  # registered and started as one step: a shutdown sees no turn that is not running
            self._turns[conversation_id] = turn  # takes over the claim
            turn.start()
            closing = self._closing
        if closing:  # the server began stopping while this turn was being set up
            turn.interrupt()
        return turn.snapshots()

    def _ended(self, turn: LiveAnswer) -> None:
        self.oversight.account(turn)
        with self._lock:
            if self._turns.get(turn.conversation_id) is turn:
                del self._turns[turn.conversation_id]
            if not turn.watchers:  # nobody saw it end: mark it in the sidebar until opened
                self._unseen.setdefault(turn.owner, set()).add(turn.conversation_id)

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
from dataclasses import dataclass, replace
from typing import Iterator

from backend.harmony.codec import tool_message
from backend.observability.oversight import Oversight
from backend.services.agent import MAX_TOOL_CALLS, AgentLoop
from backend.services.compare import PICK_FIRST, Comparison
from backend.services.options import ChatOptions, clean_text
from backend.services.pipeline import TurnPipeline, prompt_turns
from backend.services.policy import ReasoningPolicy
from backend.serving.live import LiveAnswer, Pace, Snapshot, Watch
from backend.serving.saver import PartialSaver
from backend.serving.turns import Turns
from backend.tools.toolbox import Toolbox
from core.config import EFFORTS, MAX_MESSAGE_CHARS, SAVE_INTERVAL_S
from core.errors import InputError
from core.records import MessageStatus, MessageView
from core.trace import ToolCallStep
from storage.repository import Repository

log = logging.getLogger(__name__)


def _placeholder(mid: int, position: int, options: ChatOptions) -> MessageView:
    """The answer about to be written, as stored before the model runs."""
    return MessageView(id=mid, position=position, role="assistant", content="", effort=options.effort,
                       status=MessageStatus.STREAMING)


NOT_ON_BRANCH = "The message picked is not on the branch shown any more: click one of your messages to pick it again."
BOTH_PICKED = ("Compare efforts answers either the message you picked in the chat or a new one you type, not both: "
               "empty the box, or click the picked message again to unpick it.")


def up_to_last_question(path: list[MessageView], none: str, at: int | None = None) -> list[MessageView]:
    """The branch up to its last user message (regenerate and compare answer it again), or up to the user
    message with id `at` on it; `none`: what to say when there is none."""
    users = [i for i, m in enumerate(path) if m.role == "user" and (at is None or m.id == at)]
    if not users:
        raise InputError(none if at is None else NOT_ON_BRANCH)
    return path[:users[-1] + 1]


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
        self.turns = Turns()  # the answers being written, per conversation
        self._claimed = self.turns.claimed
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
            history = [] if new else self._continued(owner, conversation_id)
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

    def _continued(self, owner: str, conversation_id: str) -> list[MessageView]:
        """The branch shown, which a new message follows: not while a comparison waits to be decided."""
        conv = self.repo.get(owner, conversation_id)
        if conv.compared:
            raise InputError(PICK_FIRST)
        return conv.messages

    def compare(self, owner: str, conversation_id: str | None, text: str, options: ChatOptions,
                efforts: tuple[str, ...] = EFFORTS, at: int | None = None) -> Comparison:
        """Answer one message at each effort at once: `text` sent as a new message, or with no text the user
        message `at` (its id) on the branch shown, or else that branch's last one. The answers are siblings
        (of any answers the message had), written together in the same worker (or sent to a server
        together); the branch shown ends at the question until one is kept (`keep`)."""
        text, options = clean_text(text or "", self.max_message_chars), self.pipeline.checked(options)
        self.oversight.check(owner)
        new, typed = not conversation_id, bool(text.strip())
        if new and not typed:
            raise InputError("Type a message to compare its answers at each effort.")
        if typed and at is not None:
            raise InputError(BOTH_PICKED)
        conversation_id = conversation_id or self.repo.new_conversation_id()
        if not new:
            self.repo.check_owner(owner, conversation_id)  # not found for anyone else's, before any claim
        with self._claimed(conversation_id):
            if typed:
                path = [] if new else self._continued(owner, conversation_id)
                history = path + [MessageView(id=0, position=len(path), role="user", content=text)]
            else:
                history = up_to_last_question(self.repo.get(owner, conversation_id).messages,
                                              "There is no message to compare answers to yet: type one.", at)
            each = [replace(options, effort=effort) for effort in efforts]
            jobs = []
            try:  # all or none: busy or still loading fail here, before anything is stored
                for opts in each:
                    jobs.append(self._submit(history, opts))
                if typed:
                    history[-1].id = self.pipeline.store_user_message(owner, conversation_id, text, options, new=new,
                                                                      answer=False)
                mids = self.repo.add_answers(owner, conversation_id, history[-1].id, [
                    {"status": MessageStatus.STREAMING, "effort": o.effort} for o in each])
                conv = self.repo.get(owner, conversation_id)
            except BaseException:
                for job in jobs:
                    job.discard()  # their streams will never run: give the worker slots back now
                if typed and not history[-1].id:
                    self.pipeline.store_user_message(owner, conversation_id, text, options, new=new, answer=False)
                raise  # e.g. busy: a new message is kept, the user can try again
            self.audit.record(owner, "compare", text=text or None, conversation_id=conversation_id,
                              effort=",".join(efforts))
            last = conv.compared[-1]  # the answers just stored are below the question, the branch's end
            started = [(job, replace(_placeholder(mid, last.position, o), siblings=last.siblings))
                       for job, mid, o in zip(jobs, mids, each)]
            answers = self._run_answers(owner, conversation_id, conv.messages, started)
            return Comparison(conversation_id, conv.messages, [a.snapshots() for a in answers])

    def attach_comparison(self, owner: str, conversation_id: str) -> list[Watch] | None:
        """The comparison being written in a conversation: one Watch per effort (None when there is none)."""
        answers = self._owned_turn(owner, conversation_id)
        return [a.snapshots() for a in answers] if len(answers) > 1 else None

    def keep(self, owner: str, conversation_id: str, effort: str) -> None:
        """"Continue with this one": the compared answer at `effort` becomes the branch shown (the others stay
        its siblings, one click away)."""
        self.repo.check_owner(owner, conversation_id)
        with self._claimed(conversation_id, hand_over=False):  # not while the comparison is being written
            chosen = [m for m in self.repo.get(owner, conversation_id).compared if m.effort == effort]
            if not chosen:
                raise InputError("There is no comparison to keep an answer from in this conversation.")
            self.repo.show_branch(owner, conversation_id, chosen[-1].id)
        self.audit.record(owner, "keep", conversation_id=conversation_id, effort=effort)

    def regenerate(self, owner: str, conversation_id: str, options: ChatOptions) -> Iterator[Snapshot]:
        """Answer the last user message of the branch shown again: a new answer beside the ones it had
        (each keeps its reasoning, trace and stats; the page moves between them)."""
        options = self.pipeline.checked(options)
        self.repo.check_owner(owner, conversation_id)
        self.oversight.check(owner)
        with self._claimed(conversation_id):
            answer = self._answer(owner, conversation_id, options, up_to_last_question(
                self.repo.get(owner, conversation_id).messages, "There is no message to answer yet."))
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
        """Stop the answer being written in this conversation, or a comparison's every answer (only the
        owner's; from any tab)."""
        if not conversation_id:
            return False
        self.repo.get(owner, conversation_id)  # raises NotFound for anyone else's
        answers = self.turns.of(conversation_id)
        for answer in answers:
            answer.cancel()
        if answers:
            self.audit.record(owner, "stop", conversation_id=conversation_id)
        return bool(answers)

    def attach(self, owner: str, conversation_id: str) -> Iterator[Snapshot] | None:
        """The live answer of a conversation (what is written so far, then each change), or None (none, or
        a comparison's several: `attach_comparison`)."""
        answers = self._owned_turn(owner, conversation_id)
        return answers[0].snapshots() if len(answers) == 1 else None

    def _owned_turn(self, owner: str, conversation_id: str) -> list[LiveAnswer]:
        answers = self.turns.of(conversation_id)
        if not answers or answers[0].owner != owner:  # a live answer names its owner: no database read then
            self.repo.check_owner(owner, conversation_id)  # raises NotFound for anyone else's
        self.seen(owner, conversation_id)
        return answers

    def writing(self, owner: str) -> set[str]:
        """The owner's conversations with an answer being written now."""
        return self.turns.writing(owner)

    def in_progress(self) -> list[dict]:
        """Every answer being written now, anyone's (the admin view): owner, conversation, so far."""
        out = []
        for t in self.turns.everyone():
            m = t.message()
            out.append({"user": t.owner, "conversation": t.conversation_id[:8], "effort": m.effort or "",
                        "steps": len(m.trace), "answer_chars": len(m.content), "watchers": t.watchers})
        return out

    def unseen(self, owner: str) -> set[str]:
        """The owner's conversations whose answer finished while no page watched it."""
        return self.turns.unseen(owner)

    def seen(self, owner: str, conversation_id: str) -> None:
        self.turns.seen(owner, conversation_id)

    def shutdown(self) -> None:
        """A clean stop of the server: every turn in progress is ended and saved as interrupted."""
        for turn in self.turns.close():
            turn.interrupt()
        self.toolbox.close()  # MCP servers end with the app

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
        if not conversation_id or self.turns.of(conversation_id):
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
        return self._run_answers(owner, conversation_id, history, [(job, live)])[0].snapshots()

    def _run_answers(self, owner: str, conversation_id: str, history: list[MessageView],
                     started: list[tuple[object, MessageView]]) -> list[LiveAnswer]:
        """The turn's answers (one, or a comparison's one per effort), each written on its own thread."""
        answers = []
        for job, live in started:
            live.left_out = getattr(job, "left_out", 0) or None  # said on the answer: what the model did not see
            answers.append(LiveAnswer(owner, conversation_id, history, live, job, saver=self.saver,
                                      save=lambda m, status: self.pipeline.finish(owner, m, None, status=status),
                                      finish=lambda m, done: self.pipeline.finish(owner, m, done),
                                      on_end=self._ended, pace=self.pace, policy=self.policy,
                                      summarizer=self.summarizer))
        if not self.turns.start(conversation_id, answers):  # the server began stopping meanwhile
            for answer in answers:
                answer.interrupt()
        return answers

    def _ended(self, turn: LiveAnswer) -> None:
        self.oversight.account(turn)
        self.turns.ended(turn)

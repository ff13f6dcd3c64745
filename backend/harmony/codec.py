"""Render conversations to harmony token ids and parse completions into events.

Only openai-harmony touches the format: prompts are rendered by its encoder
(so user text with `<|start|>` etc. stays ordinary text) and completions are
read token by token by its StreamableParser. Nothing here knows about Gradio
or about which engine produced the tokens.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field
from functools import cached_property

from openai_harmony import (
    Author,
    Conversation,
    DeveloperContent,
    HarmonyError,
    Message,
    ReasoningEffort,
    Role,
    StreamableParser,
    StreamState,
    SystemContent,
    ToolDescription,
    ToolNamespaceConfig,
)

from backend.harmony.limits import check_renderable
from backend.harmony.structured import ResponseFormat, formats_section
from backend.harmony.vocab import special_ids
from core.config import DEFAULT_EFFORT
from core.errors import ChatError, InputError
from core.events import Answer, Event, Preamble, Reasoning, ToolCall

log = logging.getLogger(__name__)

DEFAULT_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
MAX_UTF8_PENDING = 4  # a UTF-8 character spans at most 4 bytes, so at most 4 tokens


@dataclass
class PromptMessage:
    """One message of the conversation as the prompt renders it (a stored message is a MessageView).

    `harmony` holds the exact harmony messages of an assistant turn (dicts from
    Message.to_dict()) when we have them; they take precedence over the plain
    text so tool calls and preambles round-trip unchanged.
    """

    role: str  # "user" | "assistant"
    content: str
    reasoning: str = ""
    harmony: list[dict] = field(default_factory=list)


@dataclass
class PromptSettings:
    effort: str = DEFAULT_EFFORT
    instructions: str = ""
    identity: str = DEFAULT_IDENTITY
    date: str | None = None  # conversation start date, YYYY-MM-DD; today if None
    tools: list[dict] = field(default_factory=list)  # functions: {name, description, parameters}
    # built-in tools (python, browser) in the system message: {name, description, tools: [functions]}
    namespaces: list[dict] = field(default_factory=list)
    # a client's own namespaces of functions (the Responses API's `namespace` tools), in the developer
    # message beside `functions`: called as `to=NAMESPACE.FUNCTION`
    client_namespaces: list[dict] = field(default_factory=list)
    response_format: ResponseFormat | None = None  # structured output: told in the developer message


def effort_of(name: str) -> ReasoningEffort:
    """harmony's enum values are "Low"/"Medium"/"High"; look it up by name. The effort was checked where it
    came in (backend/services/options.check_effort), once."""
    return ReasoningEffort[name.upper()]


def _system_message(settings: PromptSettings) -> Message:
    date = settings.date or _dt.date.today().isoformat()
    content = (
        SystemContent.new()
        .with_model_identity(settings.identity)
        .with_reasoning_effort(effort_of(settings.effort))
        .with_conversation_start_date(date)
    )
    for space in settings.namespaces:
        content = content.with_tools(ToolNamespaceConfig(
            name=space["name"], description=space.get("description"), tools=_descriptions(space.get("tools", []))))
    return Message.from_role_and_content(Role.SYSTEM, content)


def _descriptions(tools: list[dict]) -> list[ToolDescription]:
    return [ToolDescription.new(t["name"], t.get("description", ""), parameters=t.get("parameters"))
            for t in tools]


def message_text(message: dict) -> str:
    """The text of a harmony message as stored (`Message.to_dict()`): its text parts, joined."""
    return "".join(c.get("text", "") for c in message.get("content", []) if isinstance(c, dict))


def tool_message(recipient: str, channel: str | None, text: str) -> dict:
    """A tool's result as harmony wants it: authored by the tool (`python`, `browser.search`,
    `functions.NAME`), addressed to the assistant, on the channel of the call."""
    message = Message.from_author_and_content(Author.new(Role.TOOL, recipient), text).with_recipient("assistant")
    return (message.with_channel(channel) if channel else message).to_dict()


def assistant_message(text: str, channel: str, recipient: str | None = None, content_type: str | None = None) -> dict:
    """An assistant message as harmony stores it: reasoning (analysis), an answer (final) or a call
    (commentary, to=functions.NAME, json): how the API turns a client's messages back into harmony."""
    message = Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel)
    if recipient:
        message = message.with_recipient(recipient)
    return (message.with_content_type(content_type) if content_type else message).to_dict()


def _developer_message(settings: PromptSettings) -> Message | None:
    instructions = settings.instructions
    if settings.response_format is not None:  # harmony's "# Response Formats" section, after the instructions
        instructions = "\n\n".join(filter(None, [instructions, formats_section(settings.response_format)]))
    if not instructions and not settings.tools and not settings.client_namespaces:
        return None
    content = DeveloperContent.new()
    if instructions:
        content = content.with_instructions(instructions)
    if settings.tools:
        content = content.with_function_tools(_descriptions(settings.tools))
    for space in settings.client_namespaces:
        content = content.with_tools(ToolNamespaceConfig(
            name=space["name"], description=space.get("description"), tools=_descriptions(space["tools"])))
    return Message.from_role_and_content(Role.DEVELOPER, content)


def _turn_messages(turn: PromptMessage) -> list[Message]:
    if turn.role == "user":
        return [Message.from_role_and_content(Role.USER, turn.content)]
    if turn.harmony:
        return [Message.from_dict(m) for m in turn.harmony]
    messages = []
    if turn.reasoning:
        messages.append(
            Message.from_role_and_content(Role.ASSISTANT, turn.reasoning).with_channel("analysis")
        )
    messages.append(Message.from_role_and_content(Role.ASSISTANT, turn.content).with_channel("final"))
    return messages


def without_earlier_analysis(messages: list[Message]) -> list[Message]:
    """The analysis channel (reasoning, python's calls and outputs) of every turn that ended in a final
    answer left out, as the harmony format asks: only the turn being written keeps its own. harmony's
    renderer means to do it (`auto_drop_analysis`) but drops only what comes before the *first* final
    message, so from a chat's third question on the model read the earlier answers' reasoning (openai/
    harmony PR #96; Hugging Face's chat template for gpt-oss drops them all)."""
    last_final = max((i for i, m in enumerate(messages) if m.channel == "final"), default=-1)
    return [m for i, m in enumerate(messages) if not (i < last_final and m.channel == "analysis")]


class HarmonyCodec:
    """Renders prompts and makes parsers; one per process (thread-safe encoding)."""

    def __init__(self, encoding):
        self.encoding = encoding
        self.stop_ids: list[int] = list(encoding.stop_tokens_for_assistant_actions())

    def special_id(self, name: str) -> int:
        """The id of a special token such as `<|start|>`, read from the encoding (never typed in)."""
        (token,) = self.encoding.encode(name, allowed_special="all")
        return token

    @cached_property
    def start_id(self) -> int:
        return self.special_id("<|start|>")

    @cached_property
    def return_id(self) -> int:
        return self.special_id("<|return|>")

    @cached_property
    def call_id(self) -> int:
        return self.special_id("<|call|>")

    def special_names(self) -> dict[int, str]:
        """Every special token of the vocabulary by id (structural ones and the reserved range)."""
        return {i: name for name, i in special_ids(self.encoding).items()}

    def conversation(self, turns: list[PromptMessage], settings: PromptSettings) -> Conversation:
        messages = [_system_message(settings)]
        developer = _developer_message(settings)
        if developer is not None:
            messages.append(developer)
        for turn in turns:
            messages.extend(_turn_messages(turn))
        return Conversation.from_messages(without_earlier_analysis(messages))

    def render(self, turns: list[PromptMessage], settings: PromptSettings) -> list[int]:
        """Token ids of the prompt, ending in `<|start|>assistant`.

        The analysis of earlier turns that have a final answer is left out, as the format requires
        (`without_earlier_analysis`: harmony's own default drops only some of it). Text that would hold the
        renderer too long is refused first (backend/harmony/limits.py); whatever else its Rust code
        cannot take (it panics rather than raising) is an InputError too, never a crash.
        """
        check_renderable(turns, settings)
        try:
            return list(self.encoding.render_conversation_for_completion(
                self.conversation(turns, settings), Role.ASSISTANT))
        except (KeyboardInterrupt, SystemExit, ChatError):
            raise
        except BaseException as exc:  # pyo3's PanicException is a BaseException
            log.warning("harmony could not render a prompt: %s: %s", type(exc).__name__, str(exc)[:200])
            raise InputError("This conversation could not be put in the model's format "
                             f"({type(exc).__name__}); check the text and tool definitions sent.") from None

    def call_header(self, name: str) -> list[int]:
        """The ids that begin, for the model, an assistant message calling `functions.NAME` (a client's
        tool_choice naming a function): harmony's own header, rendered by its encoder, up to and
        including `<|message|>`, so the model writes only the arguments. With `name` "", only
        ` to=functions`: the model names one of the functions itself (tool_choice "required")."""
        if not name:
            return list(self.encoding.encode(" to=functions", allowed_special=set()))
        message = (Message.from_role_and_content(Role.ASSISTANT, "").with_channel("commentary")
                   .with_recipient(f"functions.{name}").with_content_type("<|constrain|>json"))
        ids = list(self.encoding.render(message))
        begin = ids.index(self.start_id) + 2  # after `<|start|>assistant`, where every prompt ends
        return ids[begin:ids.index(self.special_id("<|message|>")) + 1]

    def parser(self, header: list[int] = ()) -> "HarmonyStream":
        """A parser for one completion; `header`: ids the app wrote for the model (call_header)."""
        stream = HarmonyStream(self.encoding, self.start_id)
        for token in header:
            stream.feed(token)
        return stream

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(ids)


def _classify(channel: str | None, recipient: str | None):
    """Which event type a content delta belongs to, and whether it is well-formed."""
    if recipient:
        return None, False  # tool-call arguments: emitted whole at the end of the message
    if channel == "analysis":
        return Reasoning, False
    if channel == "final":
        return Answer, False
    if channel == "commentary":
        return Preamble, False
    return Answer, True  # no or unknown channel: keep the text, flag it


class HarmonyStream:
    """Feeds generated token ids to harmony's StreamableParser, yields events.

    Never raises on bad model output: when the parser rejects a token we keep
    what was parsed, pass the remaining tokens on as answer text flagged
    `malformed`, and resynchronise at the next `<|start|>`.
    """

    def __init__(self, encoding, start_id: int):
        self.encoding = encoding
        self.start_id = start_id  # <|start|>: a new message begins; where parsing resyncs after garbage
        self.parser = StreamableParser(encoding, Role.ASSISTANT)
        self.raw = False  # True after a parse error, until the next <|start|>
        self.malformed = False
        self.header_tokens: list[int] = []  # header tokens not shown as content yet
        self.utf8_pending: list[int] = []  # raw-mode tokens waiting for a complete character
        self.messages: list[dict] = []  # completed harmony messages (dicts)
        self.channel: str | None = None  # channel of the message being generated
        self.in_content = False  # the last token was message content (reading parser.state is slow)
        self._kind: tuple = (None, False)  # the event class of the message being written, and is it malformed
        self._seen_messages = 0

    def feed(self, token: int) -> list[Event]:
        if self.raw:
            if token == self.start_id:
                return self._flush_raw() + self._resync(token)
            return self._raw(token)
        try:
            self.parser.process(token)
        except HarmonyError as exc:
            log.info("harmony parser rejected token %s: %s", token, exc)
            return self._go_raw(token)
        return self._after_token(token)

    def finish(self) -> list[Event]:
        """End of stream: flush what is pending. A stream cut inside a message's header (the token
        budget ran out there) shows nothing of it: a header is structure, never text."""
        events: list[Event] = self._flush_raw() if self.raw else []
        if not self.raw and self.in_content:
            try:
                self.parser.process_eos()
                events += self._collect_messages()
            except HarmonyError:
                pass  # a message cut short (length/stop): its deltas were already sent
        self.header_tokens = []
        return events

    # -- internals ---------------------------------------------------------------

    def _after_token(self, token: int) -> list[Event]:
        parser = self.parser
        if self.in_content and not self.encoding.is_special_token(token):
            # Ordinary text inside a message: the state cannot have changed and no message can have
            # ended, so neither parser.state nor parser.messages is read (each parses JSON that grows
            # with the message: reading them for every token made parsing cost O(length) per token).
            return self._delta()
        events: list[Event] = []
        state = parser.state
        self.in_content = state == StreamState.CONTENT
        if self.in_content:
            self.header_tokens = []
            self.channel = parser.current_channel
            self._kind = _classify(parser.current_channel, parser.current_recipient)
            events = self._delta()
        else:
            self.header_tokens.append(token)
            if state == StreamState.EXPECT_START:
                self.header_tokens = []  # the end token of a message: nothing to show
        return events + self._collect_messages()

    def _delta(self) -> list[Event]:
        """The text the last token added to the message being written, as its channel's event."""
        delta = self.parser.last_content_delta
        cls, bad = self._kind
        if not delta or cls is None:
            return []
        self.malformed |= bad
        return [cls(delta, malformed=bad)]

    def _collect_messages(self) -> list[Event]:
        events: list[Event] = []
        done = self.parser.messages
        for message in done[self._seen_messages :]:
            self.messages.append(message.to_dict())
            if message.recipient:
                text = "".join(c.text for c in message.content if hasattr(c, "text"))
                events.append(ToolCall(message.recipient, text, message.content_type))
        self._seen_messages = len(done)
        return events

    def _go_raw(self, token: int) -> list[Event]:
        self.raw = True
        self.in_content = False
        self.malformed = True
        pending, self.header_tokens = self._text_only(self.header_tokens), []
        events: list[Event] = []
        if pending:  # the words of a header that went wrong (its control tokens never become text)
            events.append(Answer(self.encoding.decode(pending), malformed=True))
        if token == self.start_id:
            return events + self._resync(token)
        return events + self._raw(token)

    def _text_only(self, ids: list[int]) -> list[int]:
        return [i for i in ids if not self.encoding.is_special_token(i)]

    def _raw(self, token: int) -> list[Event]:
        """Decode unparseable tokens as text, emitting only whole UTF-8 characters. Control tokens
        (`<|end|>`, `<|call|>`, ...) are structure the model got wrong, never text for a reader."""
        if self.encoding.is_special_token(token):
            return []
        self.utf8_pending.append(token)
        try:
            text = self.encoding.decode_utf8(self.utf8_pending)
        except HarmonyError:
            if len(self.utf8_pending) < MAX_UTF8_PENDING:
                return []  # maybe the rest of a multi-byte character is coming
            text = self.encoding.decode(self.utf8_pending)  # truly invalid: replace
        self.utf8_pending = []
        return [Answer(text, malformed=True)] if text else []

    def _flush_raw(self) -> list[Event]:
        if not self.utf8_pending:
            return []
        text = self.encoding.decode(self.utf8_pending)
        self.utf8_pending = []
        return [Answer(text, malformed=True)]

    def _resync(self, token: int) -> list[Event]:
        """Start a fresh parser at a `<|start|>`: the model may be back on track."""
        self.raw = False
        self.parser = StreamableParser(self.encoding, None)
        self._seen_messages = 0
        try:
            self.parser.process(token)
        except HarmonyError:
            self.raw = True
        return []

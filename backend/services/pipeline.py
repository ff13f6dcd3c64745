"""The one turn pipeline. Every entry point — the page (backend/services/chat.py), the chat-completions
API (backend/api/service.py), and the Responses API and effort comparisons to come — runs a turn through
these steps and only translates its own request and events:

1. admit   — the settings checked (the effort once, in options.check_options), the tools and functions
             resolved, the user's limits;
2. submit  — harmony messages and PromptSettings (built here, once) to the worker; busy or still
             loading fail here, before anything is stored; the agent loop runs the server's tools and
             pauses at a call to the user's (or the client's) own function;
3. store   — the user's message and the answer's placeholder committed before the model runs;
4. run     — a LiveAnswer for the page, or the events straight to an API client;
5. finish  — the answer saved as it ended (this module's `finish`, the one place), the audit log and
             the metrics.
"""

from __future__ import annotations

from dataclasses import replace

from backend.engines.base import EngineInfo
from backend.harmony.codec import PromptMessage, PromptSettings, message_text
from backend.harmony.gbnf import check_schema
from backend.harmony.structured import strict_calls
from backend.observability.oversight import Oversight
from backend.services.agent import MAX_TOOL_CALLS, AgentLoop
from backend.services.options import ChatOptions, check_options
from backend.services.policy import ReasoningPolicy
from backend.services.summary import Summarizer
from backend.serving.live import Steps
from backend.serving.worker import ChatRequest
from backend.tools.toolbox import Toolbox
from backend.tools.user_functions import CLIENT, offered_recipients, parse_user_functions
from core.config import DEFAULT_TEMPERATURE, DEMO_TEMPERATURE, MAX_MESSAGE_CHARS, MODEL_WINDOW
from core.errors import ContextLengthError, InputError, NotFoundError
from core.events import Done, ToolResult
from core.records import MessageStatus, MessageView
from storage.repository import LEAF, Repository, title_from

ANSWER_ROOM = 2_048  # tokens a page's answer gets at least: older messages are left out to make room
CLIENT_INSTRUCTIONS_CHARS = 200_000  # an API client's instructions (the model's window bounds the prompt anyway)
NO_CONSTRAINTS = ("Structured output (response_format / text.format json_schema or json_object) needs constrained "
                  "decoding of the final answer alone: the in-process model does it, an inference server in chat "
                  "mode does it itself (--server-api chat), and llama.cpp in token mode takes a grammar of the "
                  "whole completion (--server-api llamacpp); this deployment's server runs in token mode through "
                  "/v1/completions, where its structured output would constrain the reasoning too. Send "
                  "{\"type\": \"text\"}, or run the server in chat mode or the model in-process.")
BUILT_IN_NAMESPACES = ("python", "browser")  # harmony's own tools: the system message, not OpenAI `tools`


def prompt_turns(messages: list[MessageView]) -> list[PromptMessage]:
    """Stored messages as the prompt's turns."""
    turns = []
    for m in messages:
        if m.role == "assistant" and not m.content and not m.harmony:
            continue  # an answer that never came (error, stopped in reasoning) is not sent back
        turns.append(PromptMessage(m.role, m.content, m.reasoning, list(m.harmony)))  # a copy: requests add to it
    return turns


class TurnPipeline:
    def __init__(self, repo: Repository, host, *, oversight: Oversight | None = None,
                 policy: ReasoningPolicy | None = None, toolbox: Toolbox | None = None,
                 max_tool_calls: int = MAX_TOOL_CALLS, max_message_chars: int = MAX_MESSAGE_CHARS):
        self.repo, self.host, self.max_message_chars = repo, host, max_message_chars
        self.oversight = oversight or Oversight()  # limits, the audit log, metrics
        self.policy = policy or ReasoningPolicy()  # what users see of the reasoning
        self.toolbox, self.max_tool_calls = toolbox or Toolbox(), max_tool_calls
        self.summarizer = Summarizer(lambda request: self.oversight.submit(self.host.worker(), request))

    # -- what runs ----------------------------------------------------------------------------

    def engine(self) -> EngineInfo:
        """What runs (an empty record while the model loads or after it failed)."""
        status = self.host.status()
        return status.description if status.state == "ready" else EngineInfo()

    def _check_constraints(self, settings: PromptSettings) -> None:
        """Refuse what this deployment cannot hold an answer to (before the model runs): a response format
        with no way to constrain it, or, for llama.cpp's grammar, a schema keyword GBNF cannot say."""
        engine, fmt = self.engine(), settings.response_format
        if fmt is not None and not (engine.constraints or engine.server_formats or engine.server_grammars):
            raise InputError(NO_CONSTRAINTS)
        if engine.server_grammars:
            if fmt is not None:
                check_schema(fmt.schema)
            for recipient, parameters in strict_calls(settings.tools, settings.client_namespaces).items():
                check_schema(parameters, subject=f"{recipient}'s schema")

    def ready_engine(self) -> EngineInfo:
        """What runs, or the clear error of a model still loading or failed."""
        self.host.worker()
        return self.host.status().description

    def default_tools(self) -> list[str]:
        """Tools ticked for a new conversation: every tool the deployment has; on the demo model only
        the one it was trained to call (python); before a chat-only server no built-in one."""
        engine = self.engine()
        if engine.demo:  # the demo model was trained with python only
            return [t for t in self.toolbox.defaults if t == "python"]
        return [t for t in self.toolbox.defaults if not (engine.messages_only and t in BUILT_IN_NAMESPACES)]

    def default_temperature(self) -> float:
        """The temperature a page starts with: gpt-oss's recommended 1.0, or the demo model's own."""
        return DEMO_TEMPERATURE if self.engine().demo else DEFAULT_TEMPERATURE

    def enabled_tools(self, tools: list[str] | None) -> list[str]:
        if tools is None:
            return self.default_tools()
        unknown = [t for t in tools if t not in self.toolbox.names]
        if unknown:
            raise InputError(f"This server has no tool {', '.join(map(repr, unknown))}; it offers: "
                             f"{', '.join(self.toolbox.names) or 'none'}.")
        built_in = [t for t in tools if t in BUILT_IN_NAMESPACES]
        if built_in and self.engine().messages_only:
            raise InputError(f"{' and '.join(built_in)} need the prompt rendered by this app, but the inference "
                             "server takes chat messages (chat mode). Untick them, or run the server in token "
                             "mode (--server-api completions or llamacpp).")
        return [t for t in self.toolbox.names if t in tools]

    def api_servers(self, servers: list[str] | None) -> list[str]:
        """The deployment's MCP servers an API request enables (its `{"type": "mcp"}` tools); the built-in
        python and browser are not run for API clients."""
        unknown = [s for s in servers or [] if s not in self.toolbox.servers_names]
        if unknown:
            raise InputError(f"This server has no MCP server {', '.join(map(repr, unknown))}; its MCP servers: "
                             f"{', '.join(self.toolbox.servers_names) or 'none'} (the deployment's --mcp-config).")
        return list(servers or [])

    # -- 1. admit ----------------------------------------------------------------------------

    def checked(self, options: ChatOptions, *, client_functions: bool = False) -> ChatOptions:
        """Options in range, the tools resolved (stored with the chat: reopening it ticks the same) and
        the functions parsed. `client_functions`: an API client's own functions, which may take any name
        and come with none of the server's tools; its budget may reach the model's window."""
        options = check_options(options, *((MODEL_WINDOW, CLIENT_INSTRUCTIONS_CHARS) if client_functions else ()))
        if options.top_p < 1 and not self.engine().top_p:
            raise InputError("top_p below 1 needs an inference server (--engine openai): the in-process model's "
                             "continuous batching samples from every token. Leave top_p at 1, or lower the "
                             "temperature.")
        if client_functions:
            return replace(options, tools=self.api_servers(options.tools),
                           functions=parse_user_functions(options.functions, **CLIENT))
        return replace(options, tools=self.enabled_tools(options.tools),
                       functions=parse_user_functions(options.functions))

    def admit(self, owner: str, options: ChatOptions, *, client_functions: bool = False) -> ChatOptions:
        options = self.checked(options, client_functions=client_functions)
        self.oversight.check(owner)
        return options

    # -- 2. submit -----------------------------------------------------------------------------

    def prompt_settings(self, options: ChatOptions, *, client_functions: bool = False) -> PromptSettings:
        """The system and developer messages' settings: the one place they are built from ChatOptions."""
        told = self.toolbox.prompt(self.enabled_tools(options.tools))
        own = parse_user_functions(options.functions, **(CLIENT if client_functions else {}))
        return PromptSettings(effort=options.effort, instructions=options.instructions, tools=told.functions + own,
                              namespaces=told.system, client_namespaces=told.developer + list(options.namespaces or []),
                              response_format=options.response_format)

    def submit(self, turns: list[PromptMessage], options: ChatOptions, *, prior: list[dict] = (),
               client_functions: bool = False, call: str | None = None):
        """Submit the turn's first generation now (busy or still loading fail here, before anything is
        stored). Later generations of the same turn, after each tool call, resubmit with its steps (the
        agent loop). `client_functions`: an API client that runs its own functions (and no server tool):
        its one generation is the turn. `prior`: the harmony messages of a turn that paused for a
        function's result. `call`: the answer starts as a call to that function ("": to one of them), a
        client's tool_choice."""
        worker = self.host.worker()  # raises a clear error while loading
        if call is not None and self.engine().messages_only:
            raise InputError("tool_choice \"required\" or a named function needs the prompt rendered by this app, "
                             "but the inference server takes chat messages (chat mode); run it in token mode "
                             "(--server-api completions or llamacpp), or send tool_choice \"auto\".")
        settings = self.prompt_settings(options, client_functions=client_functions)
        self._check_constraints(settings)

        left = {"out": 0}  # how many of the oldest turns this turn's prompts leave out (set once, by _fitted)

        def request(steps: list[dict], tokens: int, seconds: float | None = None) -> ChatRequest:
            so_far = [PromptMessage("assistant", "", harmony=list(steps))] if steps else []
            return ChatRequest(turns[left["out"]:] + so_far, settings, options.temperature, tokens, seconds,
                               options.top_p, call=call if not steps else None,
                               min_answer=1 if client_functions else min(ANSWER_ROOM, options.max_new_tokens),
                               response_format=options.response_format)

        def first(out: int) -> ChatRequest:
            left["out"] = out
            return request(list(prior), options.max_new_tokens)

        # An API client sends what it wants read (too long is its 400, nothing is dropped); a page's long
        # conversation keeps working without its oldest messages, and the answer says so.
        job = self.oversight.submit(worker, first(0)) if client_functions else self._fitted(worker, len(turns), first)
        if client_functions and not options.tools:
            return job  # the client runs every function: its one generation is the turn
        enabled = options.tools if client_functions else self.enabled_tools(options.tools)
        client = offered_recipients(options.functions, options.namespaces)
        session = self.toolbox.session(enabled, client) if enabled or client else None

        def resubmit(steps: list[dict], tokens: int, seconds: float):
            return self.oversight.submit(self.host.worker(), request(steps, tokens, seconds))

        loop = AgentLoop(job, resubmit, session, max_tool_calls=self.max_tool_calls, time_limit_s=worker.time_limit_s,
                         max_new_tokens=options.max_new_tokens, prior=prior)
        loop.left_out = left["out"]
        return loop

    def _fitted(self, worker, count: int, first):
        """The turn's first job, with as few of its `count` oldest turns left out as make it fit (never the
        newest turn, nor the system and developer messages); `first(n)` is the request leaving out n. Each
        try renders the prompt; the tries halve the range (a few renders for hundreds of messages)."""
        try:
            return self.oversight.submit(worker, first(0))
        except ContextLengthError:
            if count < 2:
                raise
        low, high, found = 1, count - 1, None
        while low <= high:
            middle = (low + high) // 2
            try:
                job = self.oversight.submit(worker, first(middle))
            except ContextLengthError as exc:
                low, refused = middle + 1, exc
                continue
            if found is not None:
                found[0].discard()  # a longer prompt that fits: give its slot back
            found, high = (job, middle), middle - 1
        if found is None:  # the last try was the newest message alone: its error says it does not fit
            raise refused
        first(found[1])  # the agent loop's later steps leave out the same turns
        return found[0]

    # -- 3. store -------------------------------------------------------------------------------

    def store_user_message(self, owner: str, conversation_id: str, text: str, options: ChatOptions, *,
                           new: bool, answer: bool = True) -> int:
        """The user's message, the chat's settings and (with `answer`) the answer's placeholder, in one
        transaction; returns the placeholder's id (without `answer`: the message's)."""
        placeholder = {"status": MessageStatus.STREAMING, "effort": options.effort} if answer else None
        return self.repo.add_user_message(owner, conversation_id, text, options.to_settings(), new=new,
                                          answer=placeholder)

    def store_placeholder(self, owner: str, conversation_id: str, options: ChatOptions,
                          harmony: list[dict] = (), parent=LEAF) -> int:
        """The answer about to be written (its message, before the model runs), after `parent` (by default
        the last message of the branch shown)."""
        return self.repo.add_message(owner, conversation_id, "assistant", "", parent=parent, harmony=list(harmony),
                                     status=MessageStatus.STREAMING, effort=options.effort)

    def store_exchange(self, owner: str, turns: list[PromptMessage], options: ChatOptions, first_text: str,
                       via: str, metadata: dict | None = None) -> tuple[str, int]:
        """A whole request (the API's messages) as a new conversation, and the answer's placeholder."""
        settings = {**options.to_settings(), "via": via, **({"metadata": metadata} if metadata else {})}
        cid = self.repo.create_conversation(owner, title_from(first_text or f"{via.upper()} chat"), settings)
        for turn in turns[:-1]:
            self.repo.add_message(owner, cid, turn.role, turn.content, reasoning=self.policy.stored(turn.reasoning),
                                  harmony=self.policy.stored_harmony(turn.harmony))
        last = turns[-1]
        if last.role == "user":
            return cid, self.store_user_message(owner, cid, last.content, options, new=False)
        return cid, self.store_placeholder(owner, cid, options, self.policy.stored_harmony(last.harmony))

    def history(self, owner: str, conversation_id: str, message_id: int) -> tuple[str, list[MessageView]]:
        """The stored exchange up to an answer (a Responses request going on from it): its conversation and
        messages. An answer that is not the last of its conversation's branch shown is branched off into a
        copy, so going on from it never rewrites what came after it."""
        try:
            conv = self.repo.get(owner, conversation_id, upto=message_id)
        except NotFoundError:
            raise InputError("That response's answer is no longer stored (its conversation was changed).") from None
        if conv.leaf_id == message_id:
            return conversation_id, conv.messages  # the branch shown ends at it: go on in place
        copy = self.repo.create_conversation(owner, conv.title, conv.settings)
        kept = []
        for m in conv.messages:
            fields = {f: getattr(m, f) for f in ("reasoning", "reasoning_summary", "trace", "harmony", "effort", "status",
                                                 "error", "stop_reason", "reasoning_tokens", "answer_tokens")}
            kept.append(replace(m, id=self.repo.add_message(owner, copy, m.role, m.content, **fields)))
        return copy, kept

    def continue_exchange(self, owner: str, conversation_id: str, history: list[MessageView],
                          turns: list[PromptMessage], options: ChatOptions) -> tuple[str, int, MessageView | None]:
        """Store what a request adds to a stored exchange: function results join the answer that called
        (as on the page), new messages follow it. Returns the conversation, the answer's id, and the
        answer itself when the request goes on in it (only results came)."""
        kept = prompt_turns(history)
        last, answer = history[-1], None
        grown = turns[len(kept) - 1].harmony[len(last.harmony):] if last.role == "assistant" else []
        if grown:
            answer = self.add_results(owner, last, turns[len(kept) - 1].harmony,
                                      [(m["name"], message_text(m))
                                       for m in grown])
        new = turns[len(kept):]
        if not new:
            return conversation_id, last.id, replace(answer, effort=options.effort)
        for turn in new[:-1]:
            self.repo.add_message(owner, conversation_id, turn.role, turn.content,
                                  harmony=self.policy.stored_harmony(turn.harmony))
        if new[-1].role == "user":
            return conversation_id, self.store_user_message(owner, conversation_id, new[-1].content, options,
                                                            new=False), None
        return conversation_id, self.store_placeholder(owner, conversation_id, options,
                                                       self.policy.stored_harmony(new[-1].harmony)), None

    def add_results(self, owner: str, answer: MessageView, harmony: list[dict],
                    results: list[tuple[str, str]]) -> MessageView:
        """Results of the user's own functions (typed on the page, or sent by an API client) join the answer
        that called them: its harmony goes on with them, its trace shows each as "your result", and it is
        being written again. The one place for both entry points."""
        answer = replace(answer, trace=list(answer.trace), harmony=list(harmony))
        for recipient, text in results:
            Steps(answer).apply(ToolResult(recipient, text, seconds=None, summary="your result"))
        self.repo.save_message(owner, answer.id, trace=answer.trace, status=MessageStatus.STREAMING,
                               harmony=self.policy.stored_harmony(answer.harmony), error=None, stop_reason=None)
        return replace(answer, status=MessageStatus.STREAMING, error=None, stop_reason=None)

    def audit(self, owner: str, action: str, **detail) -> None:
        self.oversight.audit.record(owner, action, **detail)

    # -- 5. finish ------------------------------------------------------------------------------

    def finish(self, owner: str, answer: MessageView, done: Done | None, *, status: MessageStatus | None = None,
               harmony: list[dict] | None = None) -> None:
        """Save an answer as it ended — the one place. With `done`, it ran to an end (its status, stop reason,
        error, figures and harmony messages from there); without, it was stopped, failed or interrupted
        (`status`) and keeps what it has."""
        fields = dict(content=answer.content, reasoning=self.policy.stored(answer.reasoning),
                      reasoning_summary=answer.reasoning_summary, trace=answer.trace, left_out=answer.left_out)
        if done is not None:
            answer.status = MessageStatus.after(done.stop_reason)
            answer.stop_reason, answer.error = done.stop_reason, done.error
            answer.malformed = bool(done.malformed)
            figures = done.stats.message_fields()
            for name, value in figures.items():
                setattr(answer, name, value)
            answer.harmony = self.policy.stored_harmony(list(harmony or ()) + list(done.harmony_messages))
            fields.update(figures, harmony=answer.harmony, stop_reason=answer.stop_reason, malformed=answer.malformed)
        else:
            answer.status = status or answer.status
        self.repo.save_message(owner, answer.id, status=answer.status, error=answer.error, **fields)

    def answered(self, owner: str, conversation_id: str | None, effort: str | None, prompt_tokens: int,
                 done: Done, via: str) -> None:
        self.oversight.answered(owner, conversation_id, effort, prompt_tokens, done, via=via)

"""Which tools a deployment has, how the model is told about them, and running one call.

A tool is addressed the way harmony addresses it: `python`, `browser.search` / `browser.open` /
`browser.find`, `functions.NAME`. The deployment decides which tools exist (`--tools`); each
conversation ticks which of them the model may use. A call to anything else, a call that fails, or
one that times out becomes an error result for the model (it can recover): running a call never
raises.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from backend.tools.functions import CALCULATE, CURRENT_TIME, CalcError, calculate, current_time, parse_arguments
from backend.tools.sandbox import PythonSandbox

log = logging.getLogger(__name__)

TOOL_NAMES = ("python", "browser", "calculate", "current_time")
MAX_RESULT_CHARS = 16_000  # what goes back to the model of one result


@dataclass
class ToolOutput:
    text: str  # what the model reads
    status: str = "ok"  # ok | error | timeout | stopped | killed
    summary: str = ""  # a few words for the trace heading ("5 results")
    pages: list[dict] = field(default_factory=list)  # browser pages shown: {cursor, title, url}


@dataclass
class ToolContext:
    cancel: threading.Event
    deadline: float  # time.monotonic() by which the whole turn must end

    @property
    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)


def python_namespace(timeout_s: float) -> dict:
    """How the model is told about python: how its code really runs (stateless, standard library, no
    internet). The demo model is trained on exactly this text (at the default time limit)."""
    return {"name": "python", "tools": [], "description": (
        "Use this tool to execute Python code in your chain of thought. Each call runs in a fresh sandbox: "
        "nothing is kept between calls, only the standard library is available, and there is no internet "
        f"and no user files. python responds with what the program prints (and the value of a last bare "
        f"expression), or times out after {timeout_s:.0f} seconds.")}


class PythonTool:
    name = "python"

    def __init__(self, sandbox: PythonSandbox):
        self.sandbox = sandbox

    def namespace(self) -> dict:
        return python_namespace(self.sandbox.timeout_s)

    def run(self, method: str | None, arguments: str, ctx: ToolContext) -> ToolOutput:
        result = self.sandbox.run(arguments, ctx.cancel, ctx.remaining)
        text = result.output if result.output.strip() else "(no output)"
        return ToolOutput(text, "ok" if result.status == "ok" else result.status,
                          summary="" if result.status == "ok" else result.status)


class FunctionTool:
    """A developer function the app runs itself."""

    def __init__(self, spec: dict, call):
        self.spec, self.call, self.name = spec, call, spec["name"]

    def run(self, method, arguments: str, ctx: ToolContext) -> ToolOutput:
        try:
            value = self.call(**parse_arguments(arguments))
        except TypeError as exc:
            return ToolOutput(f"Error: wrong arguments for {self.name}: {exc}", "error", "error")
        except CalcError as exc:
            return ToolOutput(f"Error: {exc}", "error", "error")
        return ToolOutput(value)


BUILT_IN_FUNCTIONS = {"calculate": (CALCULATE, calculate), "current_time": (CURRENT_TIME, current_time)}


@dataclass
class PromptTools:
    """The enabled tools as the prompt holds them: harmony's built-in namespaces in the system message,
    functions (`functions.NAME`) and the developer's own namespaces (MCP servers) in the developer's."""

    system: list[dict] = field(default_factory=list)
    functions: list[dict] = field(default_factory=list)
    developer: list[dict] = field(default_factory=list)


class Toolbox:
    """The tools this deployment has (`available`), and why others are missing (`unavailable`)."""

    def __init__(self, tools: dict[str, object] | None = None, unavailable: dict[str, str] | None = None,
                 defaults: list[str] | None = None):
        self.tools = tools or {}
        self.unavailable = unavailable or {}
        self.defaults = [n for n in (defaults if defaults is not None else self.tools) if n in self.tools]

    @property
    def names(self) -> list[str]:
        """The built-in tools in their order, then the MCP servers in the config's."""
        return [n for n in TOOL_NAMES if n in self.tools] + [n for n in self.tools if n not in TOOL_NAMES]

    def prompt(self, enabled: list[str]) -> "PromptTools":
        """How the model is told about the enabled tools."""
        told = PromptTools()
        for name in self.names:
            if name not in enabled:
                continue
            tool = self.tools[name]
            if isinstance(tool, FunctionTool):
                told.functions.append(tool.spec)
            elif getattr(tool, "developer", False):
                told.developer.append(tool.namespace())
            else:
                told.system.append(tool.namespace())
        return told

    def _mcp(self) -> dict[str, object]:
        """The tools that are MCP servers (they run beside the app), by name, in `names` order."""
        return {n: self.tools[n] for n in self.names if hasattr(self.tools[n], "server")}

    def servers(self) -> list[dict]:
        """The MCP servers' state, for the Admin view."""
        return [t.server.status() for t in self._mcp().values()]

    def close(self) -> None:
        """Stop the tools that run beside the app (MCP servers)."""
        for tool in self._mcp().values():
            tool.server.close()

    def status(self) -> dict[str, str]:
        """Why each tool that exists cannot be used now (an MCP server not connected), by name."""
        return {n: why for n, t in self.tools.items() if (why := getattr(t, "unavailable", lambda: None)())}

    @property
    def servers_names(self) -> list[str]:
        """The MCP servers' names (the tools an API request may enable)."""
        return list(self._mcp())

    def session(self, enabled: list[str], client: list[str] = ()) -> "ToolSession":
        return ToolSession({n: self.tools[n] for n in self.names if n in enabled}, client)


class ToolSession:
    """The tools of one turn (the browser keeps its pages for the turn). `client` holds the recipients of
    the user's own functions (`functions.NAME`, an API client's `NAMESPACE.NAME`): the app does not run
    them, the person or the API client sends their results."""

    def __init__(self, tools: dict[str, object], client: list[str] = ()):
        self.tools, self.client = tools, set(client)
        self.state: dict = {}

    def is_client(self, recipient: str) -> bool:
        return recipient in self.client

    def resolve(self, recipient: str):
        """(tool, method) for a harmony recipient, or (None, None)."""
        namespace, _, method = recipient.partition(".")
        if namespace == "functions":
            tool = self.tools.get(method)
            return (tool, None) if isinstance(tool, FunctionTool) else (None, None)
        tool = self.tools.get(namespace)
        return (tool, method or None) if tool is not None and not isinstance(tool, FunctionTool) else (None, None)

    def run(self, recipient: str, arguments: str, ctx: ToolContext) -> ToolOutput:
        tool, method = self.resolve(recipient)
        if tool is None:
            offered = ", ".join(self.offered()) or "none"
            return ToolOutput(f"Error: there is no tool {recipient!r} in this conversation (tools offered: "
                              f"{offered}).", "error", "unknown tool")
        try:
            output = tool.run(method, arguments, ctx) if not hasattr(tool, "bind") else \
                tool.bind(self.state).run(method, arguments, ctx)
        except Exception as exc:  # a tool's bug is the model's error result, never the turn's end
            log.exception("tool %s failed", recipient)
            output = ToolOutput(f"Error: the tool failed ({type(exc).__name__}: {exc}).", "error", "failed")
        if len(output.text) > MAX_RESULT_CHARS:
            output.text = output.text[:MAX_RESULT_CHARS] + f"\n[cut: {len(output.text):,} characters in all]"
        return output

    def offered(self) -> list[str]:
        return [("functions." + n) if isinstance(t, FunctionTool) else n for n, t in self.tools.items()] + \
            sorted(self.client)

"""A client's functions and its tool_choice, for both APIs: which functions the model is offered, and
whether its answer must start as a call.

gpt-oss is offered functions in harmony's developer message. tool_choice is honoured exactly:
- "auto": offered, the model decides;
- "none": not offered (so the model cannot call one);
- "required": the answer starts with harmony's call header ` to=functions` (codec.call_header), so
  the model's first message is a call and it only chooses which;
- a named function: the whole header is written for the model, which writes only the arguments;
- allowed_tools (Chat Completions) / allowed_tools (Responses): only those are offered, in their mode.
A call to a function the request did not offer is never passed on (backend/api/run.py ends the answer
with an error instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from backend.tools.user_functions import CLIENT, parse_user_functions
from core.errors import InputError

NAMESPACE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED_NAMESPACES = ("functions", "python", "browser", "container", "assistant")
SERVER_SIDE = ("web_search is OpenAI's own tool, run on its servers; this server does not run it over the API. Turn "
               "it off in the client (Codex: web_search = \"disabled\").")

CHOICES = 'tool_choice must be "auto", "none", "required", or a function by name'


@dataclass(frozen=True)
class ClientTools:
    functions: list[dict] = field(default_factory=list)  # offered, in the chat-completions `tools` form
    call: str | None = None  # None: the model chooses; "": it must call one; a name: it calls that one
    # Responses' `namespace` tools: harmony namespaces of their own ({name, description, tools}), called
    # as `to=NAMESPACE.FUNCTION` and answered as function_call items with that namespace
    namespaces: list[dict] = field(default_factory=list)
    # the deployment's MCP servers the request enables by `server_label` ({"type": "mcp"}): run here
    servers: list[str] = field(default_factory=list)

    @property
    def names(self) -> set[str]:
        return {f["function"]["name"] for f in self.functions}


def _namespace(tool: dict) -> dict:
    name = tool.get("name")
    if not isinstance(name, str) or not NAMESPACE.match(name) or name in RESERVED_NAMESPACES:
        raise InputError(f"A namespace tool's name must be letters, digits and _ (not one of "
                         f"{', '.join(RESERVED_NAMESPACES)}), not {name!r}.")
    inner = tool.get("tools")
    if not isinstance(inner, list) or not inner:
        raise InputError(f"Namespace {name}: `tools` must be a non-empty list of function tools.")
    functions = parse_user_functions([_function(t, True)["function"] for t in inner], **CLIENT)
    description = tool.get("description") or ""
    if not isinstance(description, str):
        raise InputError(f"Namespace {name}: the description must be text.")
    return {"name": name, "description": description, "tools": functions}


MCP_KEYS = {"type", "server_label", "require_approval"}


def _server(tool: dict) -> str:
    """A `{"type": "mcp", "server_label": NAME}` tool: one of the deployment's MCP servers (--mcp-config),
    run by this server, without approval requests. A server the client names by URL is not run here."""
    label = tool.get("server_label")
    if tool.get("server_url") or tool.get("connector_id") or tool.get("headers") or tool.get("authorization"):
        raise InputError("This server runs only the MCP servers its deployment configured (--mcp-config); name one "
                         'by server_label, without server_url, connector_id, headers or authorization.')
    if tool.get("require_approval", "never") != "never":
        raise InputError('This server runs MCP tools without approval requests: send require_approval "never".')
    unknown = sorted(set(tool) - MCP_KEYS)
    if unknown:
        raise InputError(f"An mcp tool takes type, server_label and require_approval here, not {', '.join(unknown)}.")
    if not isinstance(label, str) or not NAMESPACE.match(label):
        raise InputError("An mcp tool needs the server_label of one of this server's MCP servers.")
    return label


def _function(tool, flat: bool) -> dict:
    """One tool as {"type": "function", "function": {...}}; Responses sends it flat."""
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
        raise InputError(f"Only function tools are taken here, not {kind!r}: send "
                         + ('{"type": "function", "name": ..., "parameters": {...}}.' if flat else
                            '{"type": "function", "function": {"name": ..., "parameters": {...}}}.'))
    if flat:
        return {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}
    if not isinstance(tool.get("function"), dict):
        raise InputError('Each tool needs a "function" object with a name and parameters.')
    return tool


def _chosen_name(choice: dict, flat: bool) -> str | None:
    function = choice if flat else choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) and name else None


def client_tools(tools, choice, *, flat: bool = False) -> ClientTools:
    """The request's `tools` and `tool_choice`, checked; `flat`: the Responses form."""
    if tools is None:
        tools = []
    if not isinstance(tools, list):
        raise InputError("`tools` must be a list of function tools.")
    if flat and any(isinstance(t, dict) and t.get("type") in ("web_search", "web_search_preview") for t in tools):
        raise InputError(SERVER_SIDE)
    grouped = [t for t in tools if flat and isinstance(t, dict) and t.get("type") == "namespace"]
    namespaces = [_namespace(t) for t in grouped]
    mcp = [t for t in tools if isinstance(t, dict) and t.get("type") == "mcp"]
    servers = list(dict.fromkeys(_server(t) for t in mcp))
    tools = [t for t in tools if t not in mcp]
    if len({ns["name"] for ns in namespaces}) < len(namespaces):
        raise InputError("Two namespace tools have the same name.")
    functions = [_function(t, flat) for t in tools if t not in grouped]
    call, mode = None, choice if choice is not None else "auto"
    if isinstance(mode, dict) and mode.get("type") == "allowed_tools":
        allowed = mode.get("tools") if flat else (mode.get("allowed_tools") or {}).get("tools")
        mode_name = mode.get("mode") if flat else (mode.get("allowed_tools") or {}).get("mode")
        if not isinstance(allowed, list) or mode_name not in ("auto", "required"):
            raise InputError("allowed_tools needs a mode (auto or required) and a list of tools.")
        wanted = {_chosen_name(t, flat) for t in allowed if isinstance(t, dict)}
        functions, mode = [f for f in functions if f["function"].get("name") in wanted], mode_name
    if mode == "none":
        return ClientTools([], None)  # nothing offered, no namespace or server either
    if mode == "required":
        call = ""
    elif isinstance(mode, dict) and mode.get("type") == "function":
        call = _chosen_name(mode, flat)
        if call is None:
            raise InputError(CHOICES + ".")
        if call not in {f["function"].get("name") for f in functions}:
            raise InputError(f"tool_choice names {call!r}, which is not one of the request's tools.")
    elif mode != "auto":
        raise InputError(CHOICES + f", not {mode!r}.")
    if call is not None and not functions:
        raise InputError("tool_choice asks for a function call, but the request offers no functions (`tools`).")
    return ClientTools(functions, call, namespaces, servers)

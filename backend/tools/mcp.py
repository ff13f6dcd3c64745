"""Tools from MCP servers: the app as a Model Context Protocol client (the official `mcp` SDK).

The deployment names its servers in `--mcp-config`, the `mcpServers` JSON other clients read:

    {"mcpServers": {
        "time": {"command": "python", "args": ["-m", "mcp_server_time"], "env": {"TZ": "UTC"}},
        "docs": {"url": "http://127.0.0.1:9000/mcp", "headers": {"Authorization": "Bearer ..."},
                 "default": "off"}}}

Each server is one harmony namespace named after it, offered in the developer message beside
`functions` (the model calls `to=time.get_current_time`), so two servers' tools never collide and the
trace says which server ran a call. Its tools' JSON Schemas go to the model as the server gives them,
checked like the functions users define (names, size, a valid schema); a tool that fails the check
is left out and the Admin view says why.

A server is connected in a thread of its own (the SDK is async) at start-up and stays connected; a
stdio server is a child process of the app that dies with it (SIGKILL when the app's process goes,
however it goes), started again when it stops (pinged every `PING_S`). It runs with the environment
its config gives it, over the SDK's minimal default (PATH, HOME, USER, ...), never the app's own.
A call has the tool time limit, Stop and the result cut of every other tool; a server's error is the
model's failed step. Images and resources in a result are named, not inlined.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from backend.tools.toolbox import ToolContext, ToolOutput

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED = {"functions", "python", "browser", "container", "calculate", "current_time", "assistant", "user",
            "system", "developer", "tool"}
MAX_DESCRIPTION = 4_000  # characters of a tool's description the model reads
MAX_TOOLS = 128  # tools of one server offered
CONNECT_WAIT_S = 20.0  # how long start-up waits for the servers' first connection
PING_S = 2.0  # how often a connected server is checked (a dead one is started again)
RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # waits before reconnecting, growing
POLL_S = 0.05
# Run before a stdio server's own command: it is killed when the app's process ends, however it ends.
LAUNCHER = ("import ctypes, os, signal, sys\n"
            "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
            "os.getppid() == int(sys.argv[1]) or os._exit(1)  # the app ended before the line above\n"
            "os.execvp(sys.argv[2], sys.argv[2:])\n")


@dataclass
class ServerSpec:
    name: str
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    on_by_default: bool = True  # ticked for new conversations ("default": "off" in the config: not)


def load_config(path: Path) -> list[ServerSpec]:
    """The servers of an `mcpServers` file; a ValueError that says what is wrong otherwise."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"--mcp-config: cannot read {path}: {exc}") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ValueError('--mcp-config: the file must be {"mcpServers": {"NAME": {...}, ...}}')
    return [_spec(name, entry) for name, entry in servers.items()]


def _strings(value, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"--mcp-config: {what} must map names to text")
    return dict(value)


def _spec(name: str, entry) -> ServerSpec:
    where = f"--mcp-config: server {name!r}"
    if not NAME.match(name) or name in RESERVED:
        raise ValueError(f"{where}: a server's name is its tools' namespace: letters, digits and _ (at most 64), "
                         f"and none of {', '.join(sorted(RESERVED))}")
    if not isinstance(entry, dict) or bool(entry.get("command")) == bool(entry.get("url")):
        raise ValueError(f"{where}: give either a command (stdio) or a url (streamable HTTP)")
    args = entry.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValueError(f"{where}: args must be a list of text")
    default = entry.get("default", "on")
    if default not in ("on", "off"):
        raise ValueError(f'{where}: default is "on" or "off"')
    url = entry.get("url") or ""
    if url and not url.startswith(("http://", "https://")):
        raise ValueError(f"{where}: the url must be http:// or https://")
    return ServerSpec(name=name, command=str(entry.get("command") or ""), args=list(args),
                      env=_strings(entry.get("env"), f"{name}'s env"), cwd=entry.get("cwd"), url=url,
                      headers=_strings(entry.get("headers"), f"{name}'s headers"), on_by_default=default == "on")


def checked_tools(tools) -> tuple[list[dict], dict[str, str]]:
    """(functions the model may see, {tool name: why it is left out}) of a server's tool listing."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    from backend.harmony.limits import unwritable

    offered, left_out = [], {}
    for tool in tools[:MAX_TOOLS]:
        name, schema = tool.name, tool.input_schema
        description = (tool.description or "")[:MAX_DESCRIPTION]
        if not isinstance(name, str) or not NAME.match(name):
            left_out[str(name)[:64]] = "its name is not letters, digits and _ (at most 64)"
            continue
        try:
            Draft202012Validator.check_schema(schema or {"type": "object"})
        except SchemaError as exc:
            left_out[name] = f"its input schema is not valid JSON Schema ({exc.message[:100]})"
            continue
        if unwritable([description, schema]) is not None:
            left_out[name] = "its description or schema is not valid Unicode"
            continue
        offered.append({"name": name, "description": description,
                        "parameters": schema or {"type": "object", "properties": {}}})
    for tool in tools[MAX_TOOLS:]:
        left_out[str(tool.name)[:64]] = f"the server lists more than {MAX_TOOLS} tools"
    return offered, left_out


def result_text(result) -> tuple[str, bool]:
    """A call's result as the text the model reads, and whether the server said it failed."""
    parts = []
    for item in result.content or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(item.text)
        elif kind in ("image", "audio"):
            size = len(getattr(item, "data", "") or "") * 3 // 4
            parts.append(f"[{kind}: {item.mime_type}, {size:,} bytes, not shown]")
        elif kind == "resource":
            resource = item.resource
            parts.append(f"[resource: {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource link: {item.name} {item.uri}]")
        else:
            parts.append(f"[{kind or 'content'} not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    failed = bool(result.is_error)
    return "\n".join(parts) or "(no output)", failed


class McpServer:
    """One configured server, kept connected on a thread of its own."""

    def __init__(self, spec: ServerSpec, timeout_s: float = 30.0):
        self.spec, self.timeout_s = spec, timeout_s
        self.state, self.problem = "connecting", None  # connecting | connected | failed
        self.tools: list[dict] = []
        self.left_out: dict[str, str] = {}
        self.instructions = ""
        self.restarts = 0
        self._client = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._broken: asyncio.Event | None = None  # set by a call that found the connection gone
        self._first = threading.Event()  # set after the first try to connect, whatever its outcome
        self._stderr = _ServerLog(spec.name) if not spec.url else None  # one pipe for every start of it

    # -- life ---------------------------------------------------------------------------------

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"mcp-{self.spec.name}", daemon=True).start()

    def wait_first(self, timeout_s: float) -> None:
        self._first.wait(timeout_s)

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._supervise())

    async def _supervise(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                await self._session()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - any failure is the server's state, shown to the admin
                self.problem = _first_line(exc)
                log.warning("MCP server %s: %s", self.spec.name, self.problem)
            self._client, self.state = None, "failed" if self.problem else "connecting"
            self._first.set()
            if self._stop.is_set():
                return
            wait = RETRY_S[min(failures, len(RETRY_S) - 1)]
            failures += 1
            self.restarts += 1
            await asyncio.sleep(wait)

    async def _session(self) -> None:
        from mcp import Client

        async with contextlib.AsyncExitStack() as stack:
            transport = await self._transport(stack)
            client = await stack.enter_async_context(Client(transport, read_timeout_seconds=self.timeout_s))
            listing = await client.list_tools()
            self.tools, self.left_out = checked_tools(listing.tools)
            self.instructions = (client.instructions or "")[:MAX_DESCRIPTION]
            self._client, self.state, self.problem = client, "connected", None
            self._first.set()
            log.info("MCP server %s connected: %d tools", self.spec.name, len(self.tools))
            self._broken = asyncio.Event()
            while not self._stop.is_set():  # a server that stops answering is started again
                try:
                    await asyncio.wait_for(self._broken.wait(), PING_S)
                    raise ConnectionError("the connection to the server was lost")
                except asyncio.TimeoutError:
                    pass
                # (the protocol's ping is gone as of 2026-07-28: listing the tools is the check, and keeps them current)
                listing = await asyncio.wait_for(client.list_tools(cache_mode="bypass"), timeout=max(self.timeout_s, 5.0))
                self.tools, self.left_out = checked_tools(listing.tools)
        self.problem = None

    async def _transport(self, stack: contextlib.AsyncExitStack):
        """The SDK's transport for the server; what it opens closes with `stack` (each connection its own)."""
        spec = self.spec
        if spec.url:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            http = await stack.enter_async_context(httpx2.AsyncClient(headers=spec.headers, timeout=self.timeout_s))
            return streamable_http_client(spec.url, http_client=http)
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        path = (spec.env or {}).get("PATH") or os.environ.get("PATH")
        if shutil.which(spec.command, path=path) is None:  # the launcher would only say "connection closed"
            raise FileNotFoundError(f"the command {spec.command!r} is not found")
        return stdio_client(StdioServerParameters(
            command=sys.executable, args=["-c", LAUNCHER, str(os.getpid()), spec.command, *spec.args],
            env=spec.env, cwd=spec.cwd), errlog=self._stderr)

    # -- calls --------------------------------------------------------------------------------

    def call(self, tool: str, arguments: dict, ctx: ToolContext) -> ToolOutput:
        client, loop = self._client, self._loop
        if client is None or loop is None or self.state != "connected":
            why = f": {self.problem}" if self.problem else ""
            return ToolOutput(f"Error: the MCP server {self.spec.name!r} is not connected{why}. It is being "
                              "started again; try later or answer without it.", "error", "not connected")
        if tool not in {t["name"] for t in self.tools}:
            return ToolOutput(f"Error: the MCP server {self.spec.name!r} has no tool {tool!r} (it offers "
                              f"{', '.join(t['name'] for t in self.tools) or 'none'}).", "error", "unknown tool")
        limit = min(self.timeout_s, ctx.remaining)
        # the SDK's own timeout a little later than ours, so a call past the limit reads as one
        future = asyncio.run_coroutine_threadsafe(client.call_tool(tool, arguments, read_timeout_seconds=limit + 5),
                                                  loop)
        deadline = time.monotonic() + limit
        while not future.done():
            if ctx.cancel.is_set() or time.monotonic() > deadline:
                future.cancel()  # the SDK tells the server the request is cancelled
                stopped = ctx.cancel.is_set()
                return ToolOutput("[stopped by the user]" if stopped else
                                  f"Error: {self.spec.name}.{tool} did not answer within {limit:.0f} s.",
                                  "stopped" if stopped else "timeout", "stopped" if stopped else "timeout")
            time.sleep(POLL_S)
        try:
            text, failed = result_text(future.result())
        except Exception as exc:  # noqa: BLE001 - the server's error is the model's failed step
            if "Connection closed" in str(exc):  # the server went away: start it again now, not at the next check
                self.state = "connecting"
                loop.call_soon_threadsafe(self._broken.set)
            return ToolOutput(f"Error from {self.spec.name}.{tool}: {_first_line(exc)}", "error", "error")
        return ToolOutput(text, "error" if failed else "ok", "error" if failed else "")

    def status(self) -> dict:
        """What the Admin view shows."""
        return {"server": self.spec.name, "transport": "http" if self.spec.url else "stdio", "state": self.state,
                "tools": len(self.tools), "restarts": self.restarts,
                "problem": self.problem or "; ".join(f"{n}: {why}" for n, why in self.left_out.items())}


class McpTool:
    """A server as a tool of the toolbox: one namespace, its tools as the namespace's functions."""

    developer = True  # its namespace goes in the developer message (the deployment's own tools)

    def __init__(self, server: McpServer):
        self.server, self.name = server, server.spec.name

    @property
    def on_by_default(self) -> bool:
        return self.server.spec.on_by_default

    def namespace(self) -> dict:
        about = self.server.instructions or f"Tools of the MCP server {self.name}."
        return {"name": self.name, "description": about, "tools": list(self.server.tools)}

    def unavailable(self) -> str | None:
        """Why its tools cannot be used now, or None."""
        if self.server.state == "connected":
            return None
        return f"MCP server not connected ({self.server.problem or 'connecting'}); it is retried"

    def run(self, method: str | None, arguments: str, ctx: ToolContext) -> ToolOutput:
        from backend.tools.functions import parse_arguments

        try:
            args = parse_arguments(arguments)
        except Exception as exc:  # noqa: BLE001 - malformed arguments are the model's error
            return ToolOutput(f"Error: the arguments are not a JSON object ({exc}).", "error", "error")
        if not method:
            return ToolOutput(f"Error: call one of {self.name}'s tools as {self.name}.TOOL.", "error", "unknown tool")
        return self.server.call(method, args, ctx)


class _ServerLog:
    """A stdio server's stderr, into the app's log (a file object for the SDK: it needs write/fileno)."""

    def __init__(self, name: str):
        self.name = name
        read, self._write = os.pipe()
        threading.Thread(target=self._relay, args=(read,), daemon=True).start()

    def fileno(self) -> int:
        return self._write

    def write(self, text: str) -> int:
        log.info("MCP server %s: %s", self.name, text.rstrip())
        return len(text)

    def flush(self) -> None:
        pass

    def _relay(self, fd: int) -> None:
        with os.fdopen(fd, "r", errors="replace") as lines:
            for line in lines:
                log.info("MCP server %s: %s", self.name, line.rstrip()[:500])


def start_servers(path: str, timeout_s: float) -> list[McpTool]:
    """The configured servers, started; waits up to CONNECT_WAIT_S for their first connection."""
    servers = [McpServer(spec, timeout_s) for spec in load_config(Path(path))]
    for server in servers:
        server.start()
    deadline = time.monotonic() + CONNECT_WAIT_S
    for server in servers:
        server.wait_first(max(deadline - time.monotonic(), 0.0))
    return [McpTool(server) for server in servers]


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _first_line(exc.exceptions[0])
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__

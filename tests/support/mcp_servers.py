"""MCP servers for the tests, written with the SDK's own server (`MCPServer`, FastMCP's name in mcp 2).

    python -m tests.support.mcp_servers stdio          # over stdin/stdout
    python -m tests.support.mcp_servers http PORT      # streamable HTTP on 127.0.0.1:PORT/mcp

Tools: `add` (text), `fail` (the server says it failed), `hang` (never answers in time), `huge` (a
megabyte of text), `picture` (an image: named, not inlined), `whoami` (the environment it runs with),
`crash` (the process exits: the app starts it again).
"""

from __future__ import annotations

import base64
import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ImageContent

server = MCPServer("test-tools", instructions="Small tools for the tests.")


@server.tool(description="Add two whole numbers.")
def add(a: int, b: int) -> str:
    return str(a + b)


@server.tool(description="Always fails.")
def fail() -> str:
    raise ToolError("this tool always fails")


@server.tool(description="Takes far too long.")
def hang(seconds: float = 3600) -> str:
    time.sleep(seconds)
    return "done"


@server.tool(description="A megabyte of text.")
def huge() -> str:
    return "x" * 1_000_000


@server.tool(description="An image.")
def picture() -> ImageContent:
    return ImageContent(type="image", data=base64.b64encode(b"\x89PNG" + b"\0" * 96).decode(), mime_type="image/png")


@server.tool(description="The environment variables the server sees, by name.")
def whoami() -> str:
    return " ".join(sorted(os.environ))


@server.tool(description="Exits the server's process.")
def crash() -> str:
    os._exit(3)


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))

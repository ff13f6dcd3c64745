"""Build the deployment's toolbox from its settings: which tools exist, and why others do not.

`--tools auto` (the default) offers calculate and current_time always; python where the sandbox
works and the app has one user (several users: only when named in --tools); the browser when it
has something to search (--browser-docs or --searxng-url). MCP servers (--mcp-config) come after the
built-in tools, each a tool of its own (backend/tools/mcp.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from backend.tools.browser import BrowserTool
from backend.tools.sandbox import PythonSandbox
from backend.tools.toolbox import BUILT_IN_FUNCTIONS, TOOL_NAMES, FunctionTool, PythonTool, Toolbox
from core.config import Config

log = logging.getLogger(__name__)


def wanted_tools(spec: str) -> tuple[list[str], bool]:
    """(names, explicit) from --tools: "auto", "none" or a comma-separated list."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return list(TOOL_NAMES), False
    if spec == "none":
        return [], True
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in TOOL_NAMES]
    if unknown:
        raise ValueError(f"--tools: unknown tool(s) {', '.join(unknown)}; choose from {', '.join(TOOL_NAMES)}")
    return names, True


def build_toolbox(config: Config, documents=None, several_users: bool = False, progress=None) -> Toolbox:
    names, explicit = wanted_tools(config.tools)
    tools, unavailable = {}, {}
    for name in names:
        if name in BUILT_IN_FUNCTIONS:
            spec, call = BUILT_IN_FUNCTIONS[name]
            tools[name] = FunctionTool(spec, call)
        elif name == "python":
            if several_users and not explicit:
                unavailable[name] = ("off because this app has several users: the deployment turns it on with "
                                     "--tools python,...")
                continue
            sandbox = PythonSandbox(timeout_s=config.tool_timeout_s)
            problem = sandbox.probe()
            if problem:
                unavailable[name] = f"unavailable: {problem}"
                log.warning("python tool unavailable: %s", problem)
            else:
                tools[name] = PythonTool(sandbox)
        elif name == "browser":
            backend = _browser_backend(config, documents, progress)
            if backend is None:
                unavailable[name] = ("unavailable: nothing to search (start with --browser-docs DIR, --searxng-url URL "
                                     "or --exa-api-key KEY)")
            else:
                tools[name] = BrowserTool(backend)
    defaults = list(tools)
    if config.mcp_config:  # each server a namespace of tools; those marked "default": "off" are not ticked
        from backend.tools.mcp import start_servers

        for server in start_servers(config.mcp_config, config.tool_timeout_s):
            tools[server.name] = server
            defaults += [server.name] if server.on_by_default else []
    return Toolbox(tools, unavailable, defaults)


def _browser_backend(config: Config, documents, progress):
    """One backend: a SearXNG if given, else Exa if it has a key, else the documents folder."""
    if config.searxng_url:
        from backend.tools.searxng import SearxngSearch

        return SearxngSearch(config.searxng_url)
    if config.exa_api_key:
        from backend.tools.exa import ExaSearch

        return ExaSearch(config.exa_api_key)
    if config.browser_docs and documents is not None:
        from backend.tools.docs import LocalDocs, index_folder

        folder = Path(config.browser_docs)
        if not folder.is_dir():
            raise ValueError(f"--browser-docs: {folder} is not a folder")
        counts = index_folder(folder, documents, progress)
        log.info("browser documents from %s: %d read, %d unchanged, %d removed, %d unreadable", folder,
                 counts["added"], counts["unchanged"], counts["removed"], counts["failed"])
        return LocalDocs(documents)
    return None

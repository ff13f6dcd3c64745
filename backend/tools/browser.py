"""harmony's built-in browser tool: search, open, find, over a search backend.

The model sees pages as numbered lines under a cursor (`[3] Title`), as gpt-oss was trained to,
and cites them as `【3†L10-L15】`; the turn keeps every page it opened so the page can turn those
citations into links. Backends (local documents, SearXNG) implement two calls, `search` and
`fetch`: adding one is a class with those two methods (see README).
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from typing import Protocol

from openai_harmony import ToolNamespaceConfig

from backend.tools.toolbox import ToolContext, ToolOutput

VIEW_LINES = 40  # lines shown when the model does not say how many
LINE_WIDTH = 200  # long lines are wrapped so a citation can point into them
MAX_TOPN = 10


@dataclass
class Hit:
    title: str
    url: str
    snippet: str


@dataclass
class Page:
    title: str
    url: str
    text: str


class SearchBackend(Protocol):
    source: str  # what the model is told it searches ("docs", "web")

    def search(self, query: str, topn: int) -> list[Hit]: ...

    def fetch(self, url: str) -> Page: ...


@dataclass
class Shown:
    """A page the model has seen in this turn, under its cursor."""

    cursor: int
    title: str
    url: str
    lines: list[str]
    links: dict[int, Hit] = field(default_factory=dict)


class BrowserTool:
    name = "browser"

    def __init__(self, backend: SearchBackend):
        self.backend = backend

    def namespace(self) -> dict:
        spec = ToolNamespaceConfig.browser()  # harmony's own browser functions and citation rules
        description = spec.description.replace("sources=web (default: web)",
                                               f"sources={self.backend.source} (default: {self.backend.source})")
        return {"name": "browser", "description": description,
                "tools": [{"name": t.name, "description": t.description, "parameters": t.parameters}
                          for t in spec.tools]}

    def bind(self, state: dict) -> "BrowserSession":
        return BrowserSession(self.backend, state.setdefault("browser_pages", []))


class BrowserSession:
    def __init__(self, backend: SearchBackend, pages: list[Shown]):
        self.backend, self.pages = backend, pages

    def run(self, method: str | None, arguments: str, ctx: ToolContext) -> ToolOutput:
        try:
            args = json.loads(arguments or "{}")
        except ValueError:
            return ToolOutput("Error: the arguments are not valid JSON.", "error", "bad arguments")
        if not isinstance(args, dict):
            return ToolOutput("Error: the arguments must be a JSON object.", "error", "bad arguments")
        actions = {"search": self.search, "open": self.open, "find": self.find}
        if method not in actions:
            return ToolOutput(f"Error: the browser has no function {method!r} (search, open, find).", "error",
                              "unknown function")
        try:
            return actions[method](**args)
        except TypeError as exc:
            return ToolOutput(f"Error: wrong arguments for browser.{method}: {exc}", "error", "bad arguments")
        except LookupError as exc:
            return ToolOutput(f"Error: {exc}", "error", "not found")

    # -- the three functions ------------------------------------------------------------------------

    def search(self, query: str, topn: int = 10, source: str | None = None) -> ToolOutput:
        hits = self.backend.search(str(query), max(1, min(int(topn), MAX_TOPN)))
        lines, links = [], {}
        for i, hit in enumerate(hits):
            links[i] = hit
            lines.append(f"【{i}†{hit.title}†{hit.url}】")
            lines += _wrap(hit.snippet)
        if not hits:
            lines = [f"No results for {query!r}."]
        shown = self._show(f"Search results for {query!r}", f"search?q={query}", lines, links)
        return self._output(shown, 0, len(lines), f"{len(hits)} result{'s' * (len(hits) != 1)}")

    def open(self, id: int | str = -1, cursor: int = -1, loc: int = -1, num_lines: int = -1,
             view_source: bool = False, source: str | None = None) -> ToolOutput:
        if isinstance(id, str) and id.strip() and not id.strip().lstrip("-").isdigit():
            return self._fetch(id.strip(), loc, num_lines)
        page = self._page(cursor)
        link = int(id)
        if link >= 0:
            if link not in page.links:
                raise LookupError(f"page [{page.cursor}] has no link {link}")
            return self._fetch(page.links[link].url, loc, num_lines)
        return self._output(page, max(int(loc), 0), num_lines, page.title)  # scroll an opened page

    def find(self, pattern: str, cursor: int = -1) -> ToolOutput:
        page = self._page(cursor)
        needle = str(pattern).lower()
        found = [f"【{page.cursor}†L{n}】 {line}" for n, line in enumerate(page.lines) if needle and needle in line.lower()]
        lines = found or [f"No matches for {pattern!r} in [{page.cursor}]."]
        shown = self._show(f"Find results for {pattern!r} in [{page.cursor}] {page.title}", page.url, lines, {})
        return self._output(shown, 0, len(lines), f"{len(found)} match{'es' * (len(found) != 1)}")

    # -- pages -------------------------------------------------------------------------------------------

    def _fetch(self, url: str, loc, num_lines) -> ToolOutput:
        page = self.backend.fetch(url)
        shown = self._show(page.title, page.url, page_lines(page.text), {})
        return self._output(shown, max(int(loc), 0), num_lines, page.title)

    def _page(self, cursor) -> Shown:
        if not self.pages:
            raise LookupError("no page is open yet: search first")
        cursor = int(cursor)
        if cursor < 0:
            return self.pages[-1]
        if cursor >= len(self.pages):
            raise LookupError(f"there is no page [{cursor}]")
        return self.pages[cursor]

    def _show(self, title: str, url: str, lines: list[str], links: dict) -> Shown:
        shown = Shown(len(self.pages), title, url, lines, links)
        self.pages.append(shown)
        return shown

    @staticmethod
    def _output(page: Shown, loc: int, num_lines, summary: str) -> ToolOutput:
        count = int(num_lines) if int(num_lines) > 0 else VIEW_LINES
        start = min(loc, max(len(page.lines) - 1, 0))
        end = min(start + count, len(page.lines))
        body = "\n".join(f"L{n}: {page.lines[n]}" for n in range(start, end))
        text = (f"[{page.cursor}] {page.title}\n({page.url})\n**viewing lines [{start} - {max(end - 1, start)}] of "
                f"{max(len(page.lines) - 1, 0)}**\n\n{body}")
        links = [{"cursor": page.cursor, "title": page.title, "url": page.url}]
        links += [{"cursor": page.cursor, "link": i, "title": h.title, "url": h.url} for i, h in page.links.items()]
        return ToolOutput(text, summary=summary, pages=links)


def _wrap(line: str) -> list[str]:
    return textwrap.wrap(line, LINE_WIDTH, break_long_words=True, replace_whitespace=False) or [""]


def page_lines(text: str) -> list[str]:
    """A document's lines as the model sees them (and as citations number them)."""
    return [w for line in text.splitlines() for w in _wrap(line)]

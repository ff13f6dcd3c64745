"""Plain HTTP routes served beside the Gradio app: /healthz and the share-link pages.

They are given to Gradio's own FastAPI app (launch's app_kwargs), so they sit outside
Gradio's login: a health check needs no password, and a share link is meant for anyone
holding it. Everything else stays behind the login.
"""

from __future__ import annotations

from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute

from backend.conversations import Sharing
from core.errors import NotFoundError
from ui.shared_page import HEADERS, render_gone, render_shared


def http_routes(shares: Sharing, host) -> list[APIRoute]:
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

    return [APIRoute("/healthz", healthz, methods=["GET"], include_in_schema=False),
            APIRoute("/s/{token}", shared, methods=["GET"], include_in_schema=False)]

"""A local HTTP server that replays recorded server streams, for the OpenAI engine's tests.

Each route holds a queue of scripted replies: an HTTP status, the body lines, a pause between
lines, and whether to drop the connection early. It records every request body and notices when
a client goes away in the middle of a stream (what a real server does to abort a request).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RECORDED = Path(__file__).parent.parent / "recorded"


@dataclass
class Reply:
    lines: list[str] = field(default_factory=list)
    status: int = 200
    pause_s: float = 0.0
    drop_after: int | None = None  # close the connection after this many lines (a crash mid-answer)
    content_type: str = "text/event-stream"


def recorded(name: str) -> list[str]:
    """A recorded stream: SSE files keep their blank separator lines, NDJSON is one object per line."""
    return (RECORDED / name).read_text().splitlines()


class ReplayServer:
    def __init__(self):
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[tuple[str, dict]] = []
        self.disconnects = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                self._reply()

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append((self.path, body))
                self._reply()

            def _reply(self):
                queue = server.routes.get(self.path) or []
                reply = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else Reply(["{}"], 404))
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for i, line in enumerate(reply.lines):
                        if reply.drop_after is not None and i >= reply.drop_after:
                            break
                        self.wfile.write((line + "\n").encode())
                        self.wfile.flush()
                        if reply.pause_s and line.strip():
                            time.sleep(reply.pause_s)
                except (BrokenPipeError, ConnectionResetError):
                    server.disconnects += 1
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def route(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def chat_stream(reasoning: str, content: str) -> list[str]:
    """A chat-completions stream as vLLM sends it (the recorded streams' shape), with this answer."""
    deltas = [{"role": "assistant", "content": ""}, {"reasoning": reasoning}, {"content": content}]
    chunks = [{"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({"choices": [], "usage": {"prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102}})
    return [line for c in chunks for line in (f"data: {json.dumps(c)}", "")] + ["data: [DONE]", ""]


def llamacpp_stream(ids: list[int]) -> list[str]:
    """llama.cpp's /completion stream (the recorded streams' shape), one id a line, ending at the last."""
    lines = [json.dumps({"index": 0, "tokens": [i], "stop": n == len(ids) - 1, **(
        {"stop_type": "eos"} if n == len(ids) - 1 else {})}) for n, i in enumerate(ids)]
    return [part for line in lines for part in (f"data: {line}", "")]

"""An engine that drives an existing inference server (vLLM, SGLang, Ollama, llama.cpp,
`transformers serve`) over its OpenAI-compatible HTTP API, behind the same interface as the
in-process model: prompt ids in, token ids out, cancellable.

Four ways to talk, chosen by `--server-api` or, with `auto`, by probing the server:
- `completions` (token mode, vLLM/SGLang): the harmony prompt ids go to /v1/completions as the
  prompt and the server's token ids come back (`return_token_ids`), parsed like local output;
- `llamacpp` (token mode, llama.cpp's `llama-server`): the same over its native /completion
  (`return_tokens`), since its /v1/completions takes ids but answers only in text;
- `chat`: /v1/chat/completions with `reasoning_effort`; reasoning, answer and tool-call deltas
  are turned back into harmony ids by a DeltaWriter (raw harmony in content is read as such);
- `ollama`: Ollama's native /api/chat (`think`, message.thinking).
Each request streams on its own thread. Stop closes the HTTP stream, which is how these servers
learn to abort a request. Errors before the first token are retried; after it, never.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

import httpx

from backend.engines.base import EngineInfo, SamplingParams, TokenStream
from backend.engines.openai_stream import (
    ToolCalls,
    chat_piece,
    completion_piece,
    llamacpp_piece,
    ollama_piece,
    sse_data,
)
from core.config import SERVER_APIS as APIS
from core.errors import GenerationError, ModelLoadError
from core.events import StopReason

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
RETRIES = 2  # extra tries, only before the first token
RETRY_BACKOFF_S = 0.5  # doubled on each retry
RETRY_STATUS = {429, 500, 502, 503, 504}
SERVER_WAIT_POLL_S = 5.0
# Per API: how a line of the response body becomes a payload (SSE or NDJSON), and how that is read.
LINE_READERS = {"completions": (sse_data, completion_piece), "llamacpp": (sse_data, llamacpp_piece),
                "chat": (sse_data, chat_piece), "ollama": (str.strip, ollama_piece)}
TOKEN_APIS = ("completions", "llamacpp")  # prompt ids in, token ids out: no DeltaWriter needed
API_LABELS = {"completions": "completions API, token ids", "llamacpp": "llama.cpp /completion, token ids",
              "chat": "chat API", "ollama": "Ollama /api/chat"}  # shown on the page


class ServerError(GenerationError):
    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


def _http_error(base_url: str, status: int, body: str) -> ServerError:
    detail = body.strip()[:300]
    try:
        parsed = json.loads(body)
        err = parsed.get("error", parsed.get("detail", detail)) if isinstance(parsed, dict) else detail
        detail = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except ValueError:
        pass
    hint = {401: " Check --api-key.", 403: " Check --api-key.", 404: " Check --base-url and --served-model."}
    return ServerError(f"The inference server at {base_url} answered HTTP {status}: {detail}.{hint.get(status, '')}",
                       retryable=status in RETRY_STATUS)


def _network_error(base_url: str, exc: Exception) -> ServerError:
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return ServerError(f"Could not reach the inference server at {base_url} ({exc.__class__.__name__}). "
                           "Is it running? Check --base-url.", retryable=True)
    if isinstance(exc, httpx.ReadTimeout):
        return ServerError(f"The inference server at {base_url} stopped answering (no data for the read "
                           "timeout). Try again, or raise --server-timeout-s.", retryable=True)
    return ServerError(f"The connection to the inference server at {base_url} failed: {exc}", retryable=True)


def _ollama_format(response_format: dict | None) -> dict:
    """OpenAI's response_format as Ollama's `format`: the JSON schema itself, or "json" for any object."""
    if not response_format:
        return {}
    schema = (response_format.get("json_schema") or {}).get("schema")
    return {"format": schema if schema is not None else "json"}


class _Request:
    """One streaming HTTP request; `abort` may be called from any thread."""

    def __init__(self):
        self.response: httpx.Response | None = None
        self.aborted = threading.Event()

    def abort(self) -> None:
        self.aborted.set()
        response = self.response
        if response is not None:
            try:
                response.close()  # the server sees the connection drop and aborts the request
            except Exception:  # noqa: BLE001 - closing a socket another thread reads may complain
                pass


class OpenAIEngine:
    def __init__(self, base_url: str, *, api: str = "auto", api_key: str = "", model: str = "",
                 timeout_s: float = 120.0, delta_writer: Callable | None = None,
                 probe_ids: list[int] | None = None):
        if api not in APIS:
            raise ValueError(f"--server-api must be one of {APIS}")
        self.base_url = base_url.rstrip("/")
        self.api, self.model = api, model
        self.new_writer = delta_writer  # () -> DeltaWriter; needed for chat and ollama
        self.probe_ids = probe_ids or [0]  # a one-token id prompt for the token-mode probes (any id works)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
                                   limits=httpx.Limits(max_connections=None, max_keepalive_connections=32))
        self.description = EngineInfo(model=model or "?", engine="OpenAI-compatible server",
                                      quantization="set by the server", device="the server's", top_p=True)

    # -- setup --------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """Ollama's and llama.cpp's native APIs live beside /v1, at the server's root."""
        return self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url

    def connect(self, progress: Callable[[str, float | None], None] | None = None,
                wait_s: float = 0.0) -> "OpenAIEngine":
        """Find the model and the way to talk; a clear ModelLoadError if the server is not usable.

        A server that is still starting (vLLM loads for minutes) is waited for up to `wait_s`.
        """
        progress = progress or (lambda stage, fraction: None)
        deadline = time.monotonic() + wait_s
        while True:
            progress(f"Connecting to the inference server at {self.base_url}", None)
            try:
                self._connect_once(progress)
                return self
            except (httpx.HTTPError, ServerError) as exc:
                error = exc if isinstance(exc, ServerError) else _network_error(self.base_url, exc)
                if not error.retryable or time.monotonic() >= deadline:
                    raise ModelLoadError(error.user_message) from exc
                progress(f"Waiting for the inference server at {self.base_url} to start", None)
                time.sleep(min(SERVER_WAIT_POLL_S, max(deadline - time.monotonic(), 0)))

    def _connect_once(self, progress) -> None:
        if not self.model:
            self.model = self._first_model()
        if self.api == "auto":
            progress("Asking the server whether it takes token ids", None)
            self.api = ("completions" if self._takes_token_ids() else
                        "llamacpp" if self._llamacpp_takes_token_ids() else "chat")
        self.description = self.description.with_(
            model=self.model, engine=f"OpenAI-compatible server ({API_LABELS[self.api]}) at {self.base_url}",
            # the server renders the prompt from chat messages: no built-in tools there, and its own
            # structured output (response_format / Ollama's format) for the final answer; llama.cpp in
            # token mode takes a grammar of the whole completion instead
            messages_only=self.api not in TOKEN_APIS, server_formats=self.api not in TOKEN_APIS,
            server_grammars=self.api == "llamacpp")

    def _first_model(self) -> str:
        response = self.client.get(f"{self.base_url}/models")
        if response.status_code >= 400:
            raise _http_error(self.base_url, response.status_code, response.text)
        models = [m.get("id") for m in (response.json().get("data") or []) if isinstance(m, dict)]
        if not models:
            raise ServerError(f"The inference server at {self.base_url} serves no model. Pass --served-model.")
        return models[0]

    def _probe(self, url: str, body: dict) -> dict:
        """POST a one-token probe: the JSON object a server answers with 200, else {} (no such
        endpoint, an error, or not JSON: the server simply does not talk that way)."""
        try:
            response = self.client.post(url, json=body)
            answer = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return {}
        return answer if isinstance(answer, dict) else {}

    def _takes_token_ids(self) -> bool:
        """vLLM and SGLang take a list of ids as the prompt and hand ids back; others refuse."""
        answer = self._probe(f"{self.base_url}/completions", {
            "model": self.model, "prompt": self.probe_ids, "max_tokens": 1, "return_token_ids": True,
            "skip_special_tokens": False})
        choice = (answer.get("choices") or [{}])[0]
        return isinstance(choice, dict) and isinstance(choice.get("token_ids"), list)

    def _llamacpp_takes_token_ids(self) -> bool:
        """llama.cpp's native /completion takes ids and, asked to, hands ids back."""
        answer = self._probe(f"{self.root_url}/completion", {"prompt": self.probe_ids, "n_predict": 1,
                                                                    "return_tokens": True})
        return isinstance(answer.get("tokens"), list)

    # -- requests -----------------------------------------------------------------------

    def submit(self, prompt_ids: list[int], params: SamplingParams, stop_ids: list[int], chat=None) -> TokenStream:
        if self.api in ("chat", "ollama") and (chat is None or self.new_writer is None):
            raise GenerationError("This server only takes chat messages, but none were given.")
        request = _Request()
        stream = TokenStream(on_cancel=request.abort)
        args = (stream, request, prompt_ids, params, stop_ids, chat)
        threading.Thread(target=self._run, args=args, name="openai-request", daemon=True).start()
        return stream

    def _body(self, prompt_ids, params: SamplingParams, stop_ids, chat) -> tuple[str, dict]:
        sampling = {"temperature": params.temperature, "top_p": params.top_p}
        if self.api == "completions":
            return f"{self.base_url}/completions", {
                "model": self.model, "prompt": list(prompt_ids), "max_tokens": params.max_new_tokens,
                "stream": True, "stream_options": {"include_usage": True}, "stop_token_ids": list(stop_ids),
                "skip_special_tokens": False, "return_token_ids": True, **sampling}
        if self.api == "llamacpp":  # it stops at its end-of-generation ids, <|return|> and <|call|>
            grammar = params.constraint.gbnf() if params.constraint is not None else None
            return f"{self.root_url}/completion", {
                "prompt": list(prompt_ids), "n_predict": params.max_new_tokens, "stream": True,
                "return_tokens": True, "cache_prompt": True, **sampling, **({"grammar": grammar} if grammar else {})}
        if self.api == "ollama":
            return f"{self.root_url}/api/chat", {
                "model": self.model, "messages": chat.messages, "stream": True, "think": chat.effort,
                "options": {"num_predict": params.max_new_tokens, **sampling},
                **({"tools": chat.tools} if chat.tools else {}), **_ollama_format(chat.response_format)}
        return f"{self.base_url}/chat/completions", {
            "model": self.model, "messages": chat.messages, "stream": True, "max_tokens": params.max_new_tokens,
            "stream_options": {"include_usage": True}, "reasoning_effort": chat.effort,
            "chat_template_kwargs": {"reasoning_effort": chat.effort}, **sampling,
            **({"tools": chat.tools} if chat.tools else {}),
            **({"response_format": chat.response_format} if chat.response_format else {})}

    def _run(self, stream: TokenStream, request: _Request, prompt_ids, params, stop_ids, chat) -> None:
        url, body = self._body(prompt_ids, params, stop_ids, chat)
        reader = _TokenReader(stream) if self.api in TOKEN_APIS else _ChatReader(stream, self.new_writer())
        for attempt in range(RETRIES + 1):
            try:
                self._stream_once(url, body, request, reader)
                return
            except Exception as exc:  # noqa: BLE001 - every failure ends this request only
                if request.aborted.is_set() or stream.closed:
                    return
                error = exc if isinstance(exc, GenerationError) else (
                    _network_error(self.base_url, exc) if isinstance(exc, httpx.HTTPError) else
                    ServerError(f"Reading the inference server's answer failed: {type(exc).__name__}: {exc}"))
                if getattr(error, "retryable", False) and not reader.started and attempt < RETRIES:
                    log.warning("retrying (%d/%d): %s", attempt + 1, RETRIES, error.user_message)
                    time.sleep(RETRY_BACKOFF_S * 2 ** attempt)
                    continue
                stream.close(StopReason.ERROR, error.user_message)
                return

    def _stream_once(self, url: str, body: dict, request: _Request, reader) -> None:
        with self.client.stream("POST", url, json=body) as response:
            request.response = response
            if request.aborted.is_set():
                return
            if response.status_code >= 400:
                raise _http_error(self.base_url, response.status_code, response.read().decode(errors="replace"))
            unwrap, read = LINE_READERS[self.api]
            for line in response.iter_lines():
                if request.aborted.is_set():
                    return
                payload = unwrap(line)
                if not payload:
                    continue
                if reader.feed(read(payload)):
                    return
            if not request.aborted.is_set():
                reader.end_of_stream()

    def close(self) -> None:
        self.client.close()


class _Reader:
    """What both readers share: push ids, remember the finish reason, end the stream once."""

    def __init__(self, stream: TokenStream):
        self.stream, self.started, self.finish = stream, False, None

    def _push(self, ids: list[int]) -> None:
        if ids:
            self.started = True
            self.stream.push(ids)

    def _note(self, piece) -> None:
        if piece.usage:
            self.stream.usage = piece.usage
        if piece.finish_reason:
            self.finish = piece.finish_reason

    def _close(self) -> None:
        self.stream.close(StopReason.LENGTH if self.finish == "length" else StopReason.STOP_ID)

    def _check_finished(self) -> None:
        if self.finish is None:
            raise ServerError("The inference server closed the stream before the answer ended.")


class _TokenReader(_Reader):
    """Token mode: push the server's ids (a server that sends only text is told to use chat)."""

    def __init__(self, stream: TokenStream):
        super().__init__(stream)
        self.last = None

    def feed(self, piece) -> bool:
        if piece.ids is None and piece.text:
            raise ServerError("The inference server returned text instead of token ids; use --server-api chat.")
        if piece.ids:
            self.last = piece.ids[-1]
            self._push(piece.ids)
        self._note(piece)
        if piece.finish_reason and piece.stop_token is not None and self.last != piece.stop_token:
            self._push([piece.stop_token])  # vLLM leaves the stop id out of the ids
        if piece.done:
            self.end_of_stream()
        return piece.done

    def end_of_stream(self) -> None:
        self._check_finished()
        self._close()


class _ChatReader(_Reader):
    """Chat and Ollama: reasoning / answer / tool-call deltas -> harmony ids via the DeltaWriter."""

    def __init__(self, stream: TokenStream, writer):
        super().__init__(stream)
        self.writer, self.tools = writer, ToolCalls()

    def feed(self, piece) -> bool:
        if piece.reasoning:
            self._push(self.writer.reasoning(piece.reasoning))
        if piece.content:
            self._push(self.writer.content(piece.content))
        self.tools.add(piece.tool_calls)
        self._note(piece)
        ended = piece.done or bool(piece.finish_reason and piece.usage)
        if ended:
            self.end_of_stream()
        return ended

    def end_of_stream(self) -> None:
        self._check_finished()
        for call in self.tools.take():
            self._push(self.writer.tool_call(call["name"], call["arguments"] or "{}"))
        self._push(self.writer.finish(self.finish))
        self._close()

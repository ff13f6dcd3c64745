"""A model-free stand-in for a GPU, for measuring the app alone (bench/app_ceiling.py).

Every request gets the same harmony completion: reasoning made of one repeated word (" zebra", one
token) and an answer of another (" llama"), emitted at a fixed rate per stream on one scheduling thread, the way a GPU
engine's decode loop hands each running stream one token per step. Each stream's user message carries
a tag ("[3-17]"); the emission time of every word is appended to a JSON-lines log under that tag, so
the load client can tell how late each word reached it.

    python -m bench.synthetic app --port 7861 --rate 100 --log emit.jsonl --data-dir /tmp/x
        the real app (create + launch) around the synthetic engine
    python -m bench.synthetic server --port 8001 --rate 100 --log emit.jsonl
        a stand-in OpenAI-compatible server (chat and completions, streaming) for --engine openai
    python -m bench.synthetic app --model 20b --cuda-graphs on --port 7861 --log emit.jsonl --data-dir /tmp/x
        the real app around the in-process engine on a real model (20b shape on a GPU, or tiny), whose
        every generated token is replaced by the completion's next one: the page shows the same words,
        paced by the model's real decode steps
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import re
import threading
import time
from pathlib import Path

from backend.engines.base import EngineInfo, SamplingParams, TokenStream
from backend.engines.transformers_engine import TransformersEngine
from core.events import StopReason

ROOT = Path(__file__).resolve().parent.parent
WORD = " zebra"  # the reasoning's word, one token; the load client counts it on the page
ANSWER_WORD = " llama"  # the answer's (a second word, so a browser can tell them apart)
TAG = re.compile(r"\[(\d+-\d+)\]")
REASONING_WORDS, ANSWER_WORDS = 200, 86  # + 14 harmony tokens around them = 300 tokens per stream
CUDA_GRAPHS = {"auto": None, "on": True, "off": False}  # --cuda-graphs: transformers decides, or forced


def completion(encoding) -> tuple[list[int], list[bool]]:
    """The completion's ids, and for each whether it is a word shown on the page."""
    head = encoding.encode("<|channel|>analysis<|message|>", allowed_special="all")
    middle = encoding.encode("<|end|><|start|>assistant<|channel|>final<|message|>", allowed_special="all")
    end = encoding.encode("<|return|>", allowed_special="all")
    (word,), (answer,) = encoding.encode(WORD), encoding.encode(ANSWER_WORD)
    ids = head + [word] * REASONING_WORDS + middle + [answer] * ANSWER_WORDS + end
    return ids, [i in (word, answer) for i in ids]


class EmissionLog:
    """Per tag, when each shown word was emitted (time.time(), comparable across processes)."""

    def __init__(self, path: Path):
        self._file, self._lock = open(path, "a"), threading.Lock()

    def write(self, tag: str, times: list[float]) -> None:
        with self._lock:
            self._file.write(json.dumps({"tag": tag, "t": times}) + "\n")
            self._file.flush()


class SyntheticEngine:
    """The Engine interface (ids in, ids out, cancellable) with zero model compute."""

    def __init__(self, encoding, rate: float, log: EmissionLog):
        self.ids, self.shown = completion(encoding)
        self.encoding, self.rate, self.log = encoding, rate, log
        self.description = EngineInfo(model=f"synthetic ({rate:g} tok/s per stream)", engine="synthetic",
                                      device="none", quantization="none")
        self._due: list = []  # (time, seq, stream state)
        self._cond = threading.Condition()
        self._seq = 0
        threading.Thread(target=self._loop, name="synthetic-decode", daemon=True).start()

    def submit(self, prompt_ids, params: SamplingParams, stop_ids, chat=None) -> TokenStream:
        found = TAG.search(self.encoding.decode(prompt_ids))
        state = {"stream": TokenStream(), "i": 0, "start": time.monotonic(), "tag": found and found.group(1),
                 "times": [], "limit": min(len(self.ids), params.max_new_tokens)}
        with self._cond:
            self._seq += 1
            heapq.heappush(self._due, (state["start"], self._seq, state))
            self._cond.notify()
        return state["stream"]

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._cond.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, s = heapq.heappop(self._due)
            if self._step(s):
                with self._cond:
                    self._seq += 1
                    heapq.heappush(self._due, (s["start"] + s["i"] / self.rate, self._seq, s))

    def _step(self, s: dict) -> bool:
        """Emit one token of a stream; False when the stream has ended."""
        stream: TokenStream = s["stream"]
        if stream.closed:  # cancelled
            self._record(s)
            return False
        i = s["i"]
        if self.shown[i]:
            s["times"].append(time.time())
        stream.push([self.ids[i]])
        s["i"] = i + 1
        if s["i"] >= s["limit"]:
            stream.close(StopReason.STOP_ID if s["i"] == len(self.ids) else StopReason.LENGTH)
            self._record(s)
            return False
        return True

    def _record(self, s: dict) -> None:
        if s["tag"]:
            self.log.write(s["tag"], s["times"])

    def close(self) -> None:
        pass


# -- the same completion, paced by a real model ----------------------------------------------------

class ScriptedStream(TokenStream):
    """A TokenStream that swaps each id the model generated for the completion's next id, and logs
    the emission time of each shown word as the model hands it over."""

    def __init__(self, script: tuple[list[int], list[bool]], on_cancel, tag: str | None, log: EmissionLog):
        super().__init__(on_cancel)
        (self.script, self.shown), self.tag, self.log, self.times = script, tag, log, []

    def push(self, ids: list[int]) -> None:
        i = self.n_tokens
        scripted = self.script[i:i + len(ids)]
        now = time.time()
        self.times += [now for k in range(i, i + len(scripted)) if self.shown[k]]
        super().push(scripted)

    def close(self, reason: StopReason, error: str | None = None) -> bool:
        if reason == StopReason.LENGTH and self.n_tokens == len(self.script):
            reason = StopReason.STOP_ID  # the script ends with <|return|>, a stop id the model never chose
        closed = super().close(reason, error)
        if closed and self.tag:
            self.log.write(self.tag, self.times)
        return closed


class ModelPacedEngine(TransformersEngine):
    """The in-process engine on a real model, but every stream shows the synthetic completion: the
    model decodes as many tokens as the completion has (no stop ids: random weights pick any), and
    each step's token is replaced by the completion's (ScriptedStream). What the page receives is
    the same as with SyntheticEngine; when it arrives is the real engine's doing."""

    def __init__(self, model, encoding, log: EmissionLog, **kwargs):
        self.script, self.encoding, self.log = completion(encoding), encoding, log
        self._tag = threading.local()
        super().__init__(model, **kwargs)

    def submit(self, prompt_ids, params: SamplingParams, stop_ids, chat=None) -> TokenStream:
        found = TAG.search(self.encoding.decode(prompt_ids))
        self._tag.value = found and found.group(1)
        scripted = SamplingParams(len(self.script[0]), params.temperature, params.top_p)
        return super().submit(prompt_ids, scripted, [])

    def _new_stream(self, rid: str) -> TokenStream:
        return ScriptedStream(self.script, lambda: self._cancel(rid), self._tag.value, self.log)


def paced_engine(args, encoding, log: EmissionLog) -> ModelPacedEngine:
    from bench.models import build_20b, build_tiny

    model = build_20b() if args.model == "20b" else build_tiny()
    description = EngineInfo(model=f"{args.model} (paced, synthetic text)", engine="transformers (continuous batching)",
                             device=str(model.device), quantization="none")
    return ModelPacedEngine(model, encoding, log, description=description,
                            use_cuda_graph=CUDA_GRAPHS[args.cuda_graphs])


# -- the real app around it ---------------------------------------------------------------------

def run_app(args) -> None:
    import app as app_module
    from backend.harmony.vocab import load_encoding
    from core.config import Config
    from core.logs import setup_logging

    setup_logging()
    encoding = load_encoding(ROOT / "data" / "vocab")
    log = EmissionLog(Path(args.log))
    config = Config(data_dir=args.data_dir, port=args.port, max_active=args.max_active,
                    max_waiting=args.max_active, max_new_tokens=2000)
    if args.model:
        def build(progress):
            return paced_engine(args, encoding, log)
    else:
        def build(progress):
            return SyntheticEngine(encoding, args.rate, log)
    parts = app_module.create(config, build_engine=build)
    app_module.launch(parts, quiet=True)


# -- a stand-in OpenAI-compatible server ------------------------------------------------------------

class StandIn:
    """/v1/models, and streaming /v1/chat/completions (reasoning deltas, then content deltas) and
    /v1/completions (token ids, as vLLM's return_token_ids), at `rate` chunks/s per request."""

    def __init__(self, encoding, rate: float, log: EmissionLog):
        self.ids, self.shown = completion(encoding)
        self.encoding, self.rate, self.log = encoding, rate, log
        self.reasoning_end = self.ids.index(encoding.encode("<|end|>", allowed_special="all")[0])

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            length = int(re.search(r"(?i)content-length:\s*(\d+)", head).group(1)) if "ength:" in head else 0
            body = json.loads(await reader.readexactly(length)) if length else {}
            path = head.split(" ", 2)[1]
            if path.endswith("/models"):
                self._json(writer, {"data": [{"id": "synthetic"}]})
            elif path.endswith("/chat/completions"):
                await self._stream(writer, body, chat=True)
            elif path.endswith("/completions") and body.get("stream"):
                await self._stream(writer, body, chat=False)
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    def _json(writer, obj) -> None:
        data = json.dumps(obj).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(data), data))

    async def _stream(self, writer, body: dict, chat: bool) -> None:
        text = body["messages"][-1]["content"] if chat else self.encoding.decode(body["prompt"])
        found = TAG.search(text)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        start, times = time.monotonic(), []
        for i, token in enumerate(self.ids):
            delay = start + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            chunk = self._chunk(i, token, chat)
            if self.shown[i]:
                times.append(time.time())
            if chunk is not None:
                writer.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                await writer.drain()
        tail = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]} if chat else \
            {"choices": [{"index": 0, "text": "", "token_ids": [], "finish_reason": "stop", "stop_reason": self.ids[-1]}]}
        usage = {"prompt_tokens": 50, "completion_tokens": len(self.ids)}
        writer.write(b"data: " + json.dumps(tail).encode() + b"\n\n")
        writer.write(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\ndata: [DONE]\n\n")
        if found:
            self.log.write(found.group(1), times)

    def _chunk(self, i: int, token: int, chat: bool) -> dict | None:
        if not chat:  # token mode: every id, the stop id last (vLLM sends it with the finish)
            if i == len(self.ids) - 1:
                return None
            return {"choices": [{"index": 0, "text": self.encoding.decode([token]), "token_ids": [token],
                                 "finish_reason": None}]}
        if not self.shown[i]:
            return None  # harmony's own tokens never reach a chat client
        reasoning = i < self.reasoning_end
        delta = {"reasoning_content": WORD} if reasoning else {"content": ANSWER_WORD}
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def run_server(args) -> None:
    from backend.harmony.vocab import load_encoding

    standin = StandIn(load_encoding(ROOT / "data" / "vocab"), args.rate, EmissionLog(Path(args.log)))

    async def serve():
        server = await asyncio.start_server(standin.handle, "127.0.0.1", args.port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["app", "server"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--max-active", type=int, default=64)
    parser.add_argument("--model", choices=["tiny", "20b"], help="pace the completion by a real model")
    parser.add_argument("--cuda-graphs", choices=list(CUDA_GRAPHS), default="auto")
    args = parser.parse_args()
    run_app(args) if args.what == "app" else run_server(args)


if __name__ == "__main__":
    main()

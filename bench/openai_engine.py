"""What the OpenAI engine adds on top of a server: our worker's stream vs a bare SSE client, one run.

Starts `transformers serve` on the demo model (CPU), or uses the server at --base-url, then
alternates rounds of
 (a) a bare client reading /v1/chat/completions deltas with httpx, and
 (b) the same request through OpenAIEngine + Worker in each of --apis (chat: harmony ids rebuilt
     from the deltas; completions / llamacpp: token ids straight from the server),
and prints JSON: tokens/s (the server's completion tokens over the streaming time) and time to the
first reasoning text, each way, with the ratio to the bare client and the milliseconds added.

    python -m bench.openai_engine [--rounds 6]
    python -m bench.openai_engine --base-url http://127.0.0.1:8080/v1 --apis chat,llamacpp  # llama-server
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testkit.net import free_port

PROMPT = "Convert 7 km to m"  # a task the demo model does well: reasoning, then an answer
EFFORT, MAX_TOKENS = "high", 400


def start_server(codec, data: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    from backend.demo.model import ensure_built

    folder = ensure_built(data / "demo-model", codec, lambda stage, fraction: None)
    port = free_port()
    cli = Path(sys.executable).parent / "transformers"
    proc = subprocess.Popen([str(cli), "serve", str(folder), "--port", str(port), "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(url + "/health", timeout=2)
            return proc, url + "/v1"
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("transformers serve did not start")


def bare_round(client, base: str, model: str) -> tuple[float, float]:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True,
            "max_tokens": MAX_TOKENS, "temperature": 1.0, "stream_options": {"include_usage": True},
            "reasoning_effort": EFFORT, "chat_template_kwargs": {"reasoning_effort": EFFORT}}
    t0, first, tokens = time.perf_counter(), None, 0
    with client.stream("POST", base + "/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
            if first is None and (delta.get("reasoning_content") or delta.get("reasoning")):
                first = time.perf_counter()
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    end = time.perf_counter()
    return first - t0, tokens / (end - first)


def engine_round(worker) -> tuple[float, float]:
    from backend.harmony.codec import PromptMessage, PromptSettings
    from backend.serving.worker import ChatRequest
    from core.events import Done, Reasoning

    t0, first = time.perf_counter(), None
    job = worker.submit(ChatRequest([PromptMessage("user", PROMPT)], PromptSettings(effort=EFFORT), 1.0, MAX_TOKENS))
    for event in job.events():
        if first is None and isinstance(event, Reasoning) and event.text:
            first = time.perf_counter()
        if isinstance(event, Done):
            end, tokens = time.perf_counter(), event.stats.total_tokens  # the server's own count
    return first - t0, tokens / (end - first)


def main() -> None:
    import httpx

    from backend.engines.openai_engine import OpenAIEngine
    from backend.harmony.bridge import DeltaWriter
    from backend.harmony.codec import HarmonyCodec
    from backend.harmony.vocab import load_encoding
    from backend.serving.worker import Worker

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--base-url", default="", help="a running server; default: start transformers serve")
    parser.add_argument("--apis", default="chat", help="engine modes to measure, comma-separated")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp())
    codec = HarmonyCodec(load_encoding(data / "vocab"))
    proc, base = start_server(codec, data) if not args.base_url else (None, args.base_url.rstrip("/"))
    try:
        workers = {api: Worker(OpenAIEngine(base, api=api, delta_writer=lambda: DeltaWriter(codec.encoding))
                               .connect(), codec) for api in args.apis.split(",")}
        client, model = httpx.Client(timeout=120), next(iter(workers.values())).engine.model
        bare_round(client, base, model)  # warm-up rounds, not counted
        rounds = {"bare_client": []}
        for api, worker in workers.items():
            engine_round(worker)
            rounds[f"openai_engine_{api}"] = []
        for _ in range(args.rounds):  # alternate, so drift in the machine's speed hits every way alike
            rounds["bare_client"].append(bare_round(client, base, model))
            for api, worker in workers.items():
                rounds[f"openai_engine_{api}"].append(engine_round(worker))
        print(json.dumps(summary(rounds, args.rounds, "transformers serve, demo model, CPU" if proc else base),
                         indent=2))
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)


def summary(rounds: dict[str, list[tuple[float, float]]], n: int, server: str) -> dict:
    med = {k: (statistics.median(r[0] for r in v) * 1000, statistics.median(r[1] for r in v))
           for k, v in rounds.items()}
    bare_ttft, bare_tps = med["bare_client"]
    out = {"server": server, "rounds": n}
    for way, (ttft, tps) in med.items():
        out[way] = {"ttft_ms": round(ttft, 1), "tokens_per_s": round(tps, 1)}
        if way != "bare_client":
            out[way].update(tokens_per_s_ratio=round(tps / bare_tps, 3), ttft_added_ms=round(ttft - bare_ttft, 1))
    return out


if __name__ == "__main__":
    main()

"""What the OpenAI engine adds on top of a server: our worker's stream vs a bare SSE client, one run.

Starts `transformers serve` on the demo model (CPU), then alternates rounds of
 (a) a bare client reading /v1/chat/completions deltas with httpx, and
 (b) the same request through OpenAIEngine + Worker (harmony ids rebuilt and parsed),
and prints JSON: tokens/s (the server's completion tokens over the streaming time) and time to the
first reasoning text, both ways, with their ratio and the milliseconds the engine adds.

    python bench/openai_engine.py [--rounds 6]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import free_port  # noqa: E402

PROMPT = "Convert 7 km to m"  # a task the demo model does well: reasoning, then an answer
EFFORT, MAX_TOKENS = "high", 400


def start_server(codec, data: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    from backend.demo.build import ensure_built

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
            "max_tokens": MAX_TOKENS, "chat_template_kwargs": {"reasoning_effort": EFFORT}}
    t0, first, tokens = time.perf_counter(), None, 0
    with client.stream("POST", base + "/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
            if first is None and delta.get("reasoning_content"):
                first = time.perf_counter()
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    end = time.perf_counter()
    return first - t0, tokens / (end - first)


def engine_round(worker) -> tuple[float, float]:
    from backend.events import Done, Reasoning
    from backend.harmony import PromptSettings, Turn
    from backend.worker import ChatRequest

    t0, first = time.perf_counter(), None
    job = worker.submit(ChatRequest([Turn("user", PROMPT)], PromptSettings(effort=EFFORT), 1.0, MAX_TOKENS))
    for event in job.events():
        if first is None and isinstance(event, Reasoning) and event.text:
            first = time.perf_counter()
        if isinstance(event, Done):
            end, tokens = time.perf_counter(), event.stats.total_tokens  # the server's own count
    return first - t0, tokens / (end - first)


def main() -> None:
    import httpx

    from backend.harmony import HarmonyCodec
    from backend.harmony_bridge import DeltaWriter
    from backend.openai_engine import OpenAIEngine
    from backend.vocab import load_encoding
    from backend.worker import Worker

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp())
    codec = HarmonyCodec(load_encoding(data / "vocab"))
    proc, base = start_server(codec, data)
    try:
        engine = OpenAIEngine(base, api="chat", delta_writer=lambda: DeltaWriter(codec.encoding)).connect()
        worker, client = Worker(engine, codec), httpx.Client(timeout=120)
        engine_round(worker)  # warm-up both paths
        bare_round(client, base, engine.model)
        bare, ours = [], []
        for _ in range(args.rounds):
            bare.append(bare_round(client, base, engine.model))
            ours.append(engine_round(worker))
        med = {k: (statistics.median(r[0] for r in v) * 1000, statistics.median(r[1] for r in v))
               for k, v in (("bare", bare), ("engine", ours))}
        print(json.dumps({
            "server": "transformers serve, demo model, CPU", "rounds": args.rounds,
            "bare_client": {"ttft_ms": round(med["bare"][0], 1), "tokens_per_s": round(med["bare"][1], 1)},
            "openai_engine": {"ttft_ms": round(med["engine"][0], 1), "tokens_per_s": round(med["engine"][1], 1)},
            "tokens_per_s_ratio": round(med["engine"][1] / med["bare"][1], 3),
            "ttft_added_ms": round(med["engine"][0] - med["bare"][0], 1),
        }, indent=2))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()

"""What a gradio_client consumer sees against the worker's own stream, same model and prompt, one run.

Prints JSON: tokens/s and time to first token (first reasoning text) both ways,
the ratio of tokens/s and the milliseconds the page path adds to TTFT.
Targets: >= 95 % of the worker's tokens/s; <= 30 ms added.

    python -m bench.e2e_stream
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from bench.harness import ROOT, App, forced_engine

PROMPT = "Explain why the sky is blue."


def worker_round(app) -> tuple[float, float]:
    from backend.harmony.codec import PromptMessage, PromptSettings
    from backend.serving.worker import ChatRequest
    from core.events import Done, Reasoning

    t0 = time.perf_counter()
    job = app.host.worker().submit(ChatRequest([PromptMessage("user", PROMPT)], PromptSettings(), 1.0, 2000))
    first = None
    for event in job.events():
        if first is None and isinstance(event, Reasoning) and event.text:
            first = time.perf_counter()
        if isinstance(event, Done):
            end, tokens = time.perf_counter(), event.stats.total_tokens
    return first - t0, tokens / (end - first)


CLIENT = """
import json, sys, time
from gradio_client import Client
from testkit.streams import first_text_time
c = Client(sys.argv[1], verbose=False)
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    job = c.submit(sys.argv[3], "", "medium", "", 1.0, 2000, api_name="/send")
    first, end = first_text_time(job)
    print(json.dumps({"t0": t0, "first": first, "end": end, "cid": job.outputs()[0][2]}), flush=True)
"""


def client_rounds(app, rounds: int) -> list[tuple[float, float]]:
    """A gradio_client in a child process (its polling threads would otherwise share our GIL)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", CLIENT, app.url, str(rounds), PROMPT], check=True,
                         capture_output=True, text=True, cwd=ROOT).stdout
    results = []
    for line in out.splitlines():
        r = json.loads(line)
        last = app.service.repo.get("local", r["cid"]).messages[-1]
        results.append((r["first"] - r["t0"], last_tokens(last) / (r["end"] - r["first"])))
    return results


def last_tokens(m) -> int:
    return (m.reasoning_tokens or 0) + (m.answer_tokens or 0) + 8  # + the header tokens between messages


def main() -> None:
    app = App(forced_engine())
    worker_round(app)  # warm-up
    client_rounds(app, 1)
    w, c = [], []
    for _ in range(5):  # alternate, so a busy machine slows both alike
        w.append(worker_round(app))
        c += client_rounds(app, 1)
    app.close()
    w_ttft, w_tps = (statistics.median(x) for x in zip(*w))
    c_ttft, c_tps = (statistics.median(x) for x in zip(*c))
    print(json.dumps({
        "worker_tok_s": round(w_tps, 1), "client_tok_s": round(c_tps, 1),
        "client_vs_worker_tok_s": round(c_tps / w_tps, 3),
        "worker_ttft_ms": round(1000 * w_ttft, 1), "client_ttft_ms": round(1000 * c_ttft, 1),
        "added_ttft_ms": round(1000 * (c_ttft - w_ttft), 1),
        "targets": {"client_vs_worker_tok_s": ">= 0.95", "added_ttft_ms": "<= 30"},
    }, indent=2))


if __name__ == "__main__":
    main()

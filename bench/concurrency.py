"""1, 8 and 32 simultaneous chats through the app (gradio_client), on the demo model.

Prints JSON per level: aggregate tokens/s, p50/p95 time to first reasoning text,
errors (must be 0), and whether the database afterwards holds exactly what
was sent (every user message, every answer complete).

    python -m bench.concurrency [--levels 1 8 32]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from bench.harness import App, demo_engine, run_together
from tests.support.streams import first_text_time


def one_chat(client, question: str, out: dict) -> None:
    t0 = time.perf_counter()
    try:
        job = client.submit(question, "", "medium", "", 1.0, 400, api_name="/send")
        first, end = first_text_time(job)
        out.update(ttft=(first or end) - t0, cid=job.outputs()[0][2], question=question)
    except Exception as exc:  # counted, never raised: the bench reports errors
        out.update(error=f"{type(exc).__name__}: {exc}")


def level(app, clients, n: int, rng: random.Random) -> dict:
    from backend.demo.data import MAKERS

    questions = [MAKERS[rng.choice(["add", "convert", "count", "sort"])](rng, "medium").question + f" #{i}"
                 for i in range(n)]
    results = [dict() for _ in range(n)]
    wall = run_together(one_chat, [(clients[i], questions[i], results[i]) for i in range(n)])
    errors = [r["error"] for r in results if "error" in r]
    ok = [r for r in results if "error" not in r]
    tokens, stored = 0, 0
    for r in ok:
        conv = app.service.repo.get("local", r["cid"])
        user, answer = conv.messages
        stored += user.content == r["question"] and answer.status == "complete"
        tokens += (answer.reasoning_tokens or 0) + (answer.answer_tokens or 0)
    ttfts = sorted(r["ttft"] for r in ok)
    return {"chats": n, "aggregate_tok_s": round(tokens / wall, 1),
            "ttft_p50_ms": round(1000 * statistics.median(ttfts), 1) if ttfts else None,
            "ttft_p95_ms": round(1000 * ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))], 1) if ttfts else None,
            "errors": len(errors), "error_samples": errors[:3], "stored_exactly": stored == n}


def main() -> None:
    from gradio_client import Client

    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    app = App(demo_engine, max_active=32, max_waiting=64)
    clients = [Client(app.url, verbose=False) for _ in range(max(args.levels))]
    rng = random.Random(0)
    level(app, clients, 1, rng)  # warm-up
    report = [level(app, clients, n, rng) for n in args.levels]
    app.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

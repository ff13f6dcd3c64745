"""1, 8 and 32 simultaneous chats on the demo model: through the page against the worker alone.

The app (create + launch, demo model, continuous batching) runs in this process. Per level, in
alternating rounds with the same questions and settings (medium effort, temperature ~0 so both
ways write the same answers, 400 tokens at most):
 - worker alone: the questions go straight to the app's worker, one thread each;
 - through the page: simulated tabs in another process (bench/gradio_load.py, Gradio's own queue
   protocol) press Enter at once and follow their answers to the end, as the browser does.
Prints JSON per level: aggregate tokens/s both ways and their ratio, p50/p95 time to the first
reasoning text on the page, errors (must be 0), and whether the database then holds exactly what was
sent (every user message, every answer complete). Target: page >= 0.9 x worker.

    python -m bench.concurrency [--levels 1 8 32] [--rounds 1] [--model-in-app-process]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.app_ceiling import percentile
from bench.harness import ROOT, App, demo_engine, run_together

# No tools on the page either: the worker alone renders the bare question, and a page that runs python
# (the demo model's default tool) would be measuring the sandbox and a second round trip as well.
SETTINGS = {"Reasoning effort": "medium", "Temperature": 0.0, "Max new tokens": 400, "Tools the model may use": []}


def questions_for(n: int, rng: random.Random) -> list[str]:
    from lab.data import MAKERS

    return [MAKERS[rng.choice(["add", "convert", "count", "sort"])](rng, "medium").question for _ in range(n)]


def worker_alone(app, questions: list[str]) -> float:
    """Aggregate tokens/s of the worker itself on these questions."""
    from backend.harmony.codec import PromptMessage, PromptSettings
    from backend.serving.worker import ChatRequest
    from core.events import Done

    tokens = []

    def one(q):
        request = ChatRequest([PromptMessage("user", q)], PromptSettings(effort="medium"), 0.0, SETTINGS["Max new tokens"])
        done = [e for e in app.host.worker().submit(request).events() if isinstance(e, Done)][-1]
        tokens.append((done.stats.reasoning_tokens or 0) + (done.stats.answer_tokens or 0))  # as stored

    wall = run_together(one, [(q,) for q in questions])
    return sum(tokens) / wall


def through_the_page(app, questions: list[str], level: int) -> dict:
    out = Path(tempfile.mkdtemp()) / "tabs.jsonl"
    subprocess.run([sys.executable, "-m", "bench.gradio_load", app.url, "--tabs", str(len(questions)),
                    "--level", str(level), "--out", str(out), "--questions", json.dumps(questions),
                    "--settings", json.dumps(SETTINGS)], check=True, cwd=ROOT)
    tabs = [json.loads(line) for line in out.read_text().splitlines()]
    start = min(t["t0"] for t in tabs)
    tokens, stored, firsts = 0, 0, []
    for t, q in zip(tabs, questions):
        if t["errors"] or not t["conversation_id"]:
            continue
        user, answer = app.service.repo.get("local", t["conversation_id"]).messages
        stored += user.content == q and answer.status == "complete"
        tokens += (answer.reasoning_tokens or 0) + (answer.answer_tokens or 0)
        if t["first_text"]:
            firsts.append(t["first_text"] - t["t0"])
    wall = max(t["end"] for t in tabs) - start
    return {"tok_s": tokens / wall, "errors": sum(len(t["errors"]) for t in tabs),
            "error_samples": [e for t in tabs for e in t["errors"]][:3], "stored_exactly": stored == len(tabs),
            "first_text_p50_ms": round(1000 * statistics.median(firsts), 1) if firsts else None,
            "first_text_p95_ms": round(1000 * percentile(firsts, 0.95), 1) if firsts else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--model-in-app-process", action="store_true",
                        help="the demo model in the app's own process (default: its own, as `python app.py`)")
    args = parser.parse_args()
    if args.model_in_app_process:
        app = App(demo_engine, max_active=32, max_waiting=64)
    else:
        app = App(None, demo=True, max_active=32, max_waiting=64)
    rng = random.Random(0)
    worker_alone(app, questions_for(2, rng))  # warm-up, both ways
    through_the_page(app, questions_for(2, rng), 0)
    report = []
    for n in args.levels:
        worker, page, runs = [], [], []
        for r in range(args.rounds):
            questions = questions_for(n, rng)
            worker.append(worker_alone(app, questions))
            result = through_the_page(app, questions, 100 * n + r)
            page.append(result["tok_s"])
            runs.append(result)
        w, p = statistics.median(worker), statistics.median(page)
        report.append({"chats": n, "worker_alone_tok_s": round(w, 1), "through_the_page_tok_s": round(p, 1),
                       "page_vs_worker": round(p / w, 3), **{k: v for k, v in runs[-1].items() if k != "tok_s"}})
        print(json.dumps(report[-1]), file=sys.stderr, flush=True)
        time.sleep(1)
    app.close()
    print(json.dumps({"target": "page_vs_worker >= 0.9", "levels": report}, indent=2))


if __name__ == "__main__":
    main()

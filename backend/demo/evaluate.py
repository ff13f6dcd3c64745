"""Measure the demo model on held-out prompts through the real worker (continuous batching).

    python -m backend.demo.evaluate [--per-cell 8]

Prints JSON: per task, how many answers parsed as harmony (analysis, then a
final answer or a tool call) and how many were right; per effort, the mean
reasoning length in characters.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
from collections import defaultdict
from pathlib import Path

from backend.demo.data import MAKERS, TASKS, WEATHER_TOOL
from backend.harmony.codec import PromptSettings, Turn
from backend.worker import ChatRequest, Worker
from core.config import EFFORTS
from core.events import Answer, Done, Reasoning, StopReason, ToolCall

HELD_OUT_SEED = 987654  # the training corpus uses another seed


def held_out(per_cell: int, seed: int = HELD_OUT_SEED):
    rng = random.Random(seed)
    return [MAKERS[task](rng, effort) for task in TASKS for effort in EFFORTS for _ in range(per_cell)]


def judge(sample, events) -> dict:
    kinds = [e.kind for e in events if not isinstance(e, Done)]
    done = events[-1]
    reasoning = "".join(e.text for e in events if isinstance(e, Reasoning))
    answer = "".join(e.text for e in events if isinstance(e, Answer))
    calls = [e for e in events if isinstance(e, ToolCall)]
    first_other = next((i for i, k in enumerate(kinds) if k != "reasoning"), len(kinds))
    ordered = bool(reasoning) and all(k != "reasoning" for k in kinds[first_other:])
    if sample.tool:
        parsed = ordered and len(calls) == 1 and done.stop_reason == StopReason.CALL and not done.malformed
        right = parsed and calls[0].recipient == "functions.get_weather" and sample.expected in calls[0].arguments
    else:
        parsed = ordered and bool(answer) and done.stop_reason == StopReason.RETURN and not done.malformed
        right = parsed and sample.expected in answer
    return {"task": sample.task, "effort": sample.effort, "parsed": parsed, "right": right,
            "reasoning_chars": len(reasoning)}


def evaluate(worker: Worker, per_cell: int = 8, temperature: float = 1.0) -> dict:
    samples = held_out(per_cell)
    results = [None] * len(samples)

    def run(i, s):
        tools = [WEATHER_TOOL] if s.tool else []
        settings = PromptSettings(effort=s.effort, tools=tools)
        job = worker.submit(ChatRequest([Turn("user", s.question)], settings, temperature, 400))
        results[i] = judge(s, list(job.events()))

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(samples)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarize(results)


def summarize(results: list[dict]) -> dict:
    by_task, chars = defaultdict(lambda: [0, 0, 0]), defaultdict(list)
    for r in results:
        cell = by_task[r["task"]]
        cell[0] += 1
        cell[1] += r["parsed"]
        cell[2] += r["right"]
        chars[r["effort"]].append(r["reasoning_chars"])
    return {
        "tasks": {t: {"n": n, "parsed": p, "right": k} for t, (n, p, k) in by_task.items()},
        "parsed": sum(r["parsed"] for r in results), "right": sum(r["right"] for r in results),
        "n": len(results),
        "reasoning_chars_by_effort": {e: round(sum(v) / len(v), 1) for e, v in chars.items()},
    }


def main() -> None:
    from backend.demo.build import ensure_built
    from backend.engines.loader import load_model
    from backend.engines.transformers_engine import TransformersEngine
    from backend.harmony.codec import HarmonyCodec
    from backend.harmony.vocab import load_encoding

    parser = argparse.ArgumentParser(description="Evaluate the demo model on held-out prompts.")
    parser.add_argument("--folder", default="data/demo-model")
    parser.add_argument("--per-cell", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args()
    folder = Path(args.folder)
    codec = HarmonyCodec(load_encoding(folder.parent / "vocab"))
    ensure_built(folder, codec)
    engine = TransformersEngine(load_model(str(folder)).model, seed=0)
    try:
        report = evaluate(Worker(engine, codec, max_active=32, max_waiting=1000), args.per_cell, args.temperature)
    finally:
        engine.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

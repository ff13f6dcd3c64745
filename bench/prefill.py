"""Does one long prompt freeze the other chats? A short chat's time to first token alone, and while one
20,000-token prompt is being prefilled in the same worker, on the demo model (CPU), with transformers' FIFO
scheduler and with ours (backend/engines/scheduling.py), side by side in one run.

transformers' continuous batching prefills a long prompt in chunks of at most `max_batch_tokens` tokens per
step. Its FIFO scheduler gives each step to the long prompt's next chunk before a request still waiting, so
a short chat waited for the whole prefill; ours puts waiting requests first. Prints JSON per scheduler: the
medians of each, their ratio, the long prompt's own time to first token, and the chunk size.

    python -m bench.prefill [--long-tokens 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from backend.engines import scheduling
from backend.harmony.codec import HarmonyCodec, PromptMessage, PromptSettings
from backend.harmony.vocab import load_encoding
from backend.serving.worker import ChatRequest, Worker
from bench.harness import demo_engine

ROOT = Path(__file__).resolve().parent.parent
SHORT = "What is 17 + 25?"


def long_text(codec: HarmonyCodec, tokens: int) -> str:
    """Prose of about `tokens` tokens (varied words: the tokenizer's quadratic runs stay out of it)."""
    sentence = "The committee reviewed item {} of the budget and asked for a shorter report by Friday. "
    text, i = "", 0
    while len(codec.encoding.encode(text)) < tokens:
        text += "".join(sentence.format(i + k) for k in range(200))
        i += 200
    return text


def request(text: str, max_new_tokens: int) -> ChatRequest:
    return ChatRequest([PromptMessage("user", text)], PromptSettings(effort="low"), max_new_tokens=max_new_tokens,
                       temperature=0.3)


def first_token_s(worker: Worker, text: str, max_new_tokens: int) -> float:
    """Seconds from submit to the first generated token (the worker's own figure)."""
    done = list(worker.submit(request(text, max_new_tokens)).events())[-1]
    assert done.error is None, done.error
    return done.stats.ttft


def measure(worker: Worker, text: str, rounds: int) -> dict:
    """The short chat's time to first token alone and beside the long prompt's prefill, `rounds` times each."""
    first_token_s(worker, SHORT, 8)  # warm-up
    alone, beside, long_ttft = [], [], []
    for _ in range(rounds):
        alone.append(first_token_s(worker, SHORT, 8))
        started, result = threading.Event(), {}

        def run_long():
            job = worker.submit(request(text, 4))
            started.set()
            result["ttft"] = list(job.events())[-1].stats.ttft

        thread = threading.Thread(target=run_long)
        thread.start()
        started.wait()
        time.sleep(0.2)  # a benchmark's pause, not a test's wait: the long prompt's prefill is under way
        beside.append(first_token_s(worker, SHORT, 8))
        thread.join()
        long_ttft.append(result["ttft"])
    a, b = statistics.median(alone), statistics.median(beside)
    return {"short_ttft_alone_ms": round(1000 * a, 1), "short_ttft_during_long_prefill_ms": round(1000 * b, 1),
            "ratio": round(b / a, 2), "long_prompt_ttft_s": round(statistics.median(long_ttft), 2),
            "short_ttft_during_ms_all": [round(1000 * x, 1) for x in beside]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--long-tokens", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    codec = HarmonyCodec(load_encoding(ROOT / "data" / "vocab"))
    text = long_text(codec, args.long_tokens)
    report = {"model": "demo (CPU)", "rounds": args.rounds,
              "long_prompt_tokens": len(codec.render([PromptMessage("user", text)], PromptSettings(effort="low")))}
    data = Path(tempfile.mkdtemp())
    for scheduler in ("fifo", scheduling.NAME):  # transformers' own, then ours: side by side in one run
        engine = demo_engine(codec, data, scheduler=scheduler)
        worker = Worker(engine, codec, max_active=4, max_waiting=0)
        report["max_batch_tokens"] = engine._cb_args["max_batch_tokens"]
        report[scheduler] = measure(worker, text, args.rounds)
        engine.close()
    report["short_ttft_during_fifo_vs_ours"] = round(report["fifo"]["short_ttft_during_long_prefill_ms"]
                                                     / report[scheduling.NAME]["short_ttft_during_long_prefill_ms"], 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Gradio's own floor: the page's turn shape with nothing of the app behind it.

bench/app_ceiling.py measures the real app; this is the same measurement (`--modes gradio-floor`)
against a bare Gradio page that does only what any Gradio chat must do for a streamed turn: a direct
call that starts it (queue=False, no processing) and a queued stream, paced like the app's
(`backend.serving.live.Pace`: at most 20 updates a second per page, 200 for all pages together), with values
already in the page's form (postprocess=False) and the same launch settings (`ui/runtime.py`, a
frozen heap, uvloop). No model, no harmony, no database, no threads: each answer's words are "emitted"
on the synthetic engine's schedule (token i of 300 at start + i / rate) and logged the same way, so
the load client sees the same words and the lags compare. Whatever this page cannot deliver on a
machine, no app built on Gradio's queue can.

    python -m bench.gradio_floor --port 7862 --rate 100 --log emit.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import time
from pathlib import Path

from backend.harmony.vocab import load_encoding
from backend.serving.live import Pace
from bench.synthetic import ANSWER_WORD, ROOT, TAG, WORD, EmissionLog, completion
from ui.floor_page import build, launch

CAPACITY = 4 * 2 * 64  # as the app sizes its queue for --max-active 64 (bench.synthetic app)


class FloorPage:
    def __init__(self, encoding, rate: float, log: EmissionLog):
        ids, shown = completion(encoding)
        (answer_word,) = encoding.encode(ANSWER_WORD)
        self.rate, self.log, self.pace, self.tokens = rate, log, Pace(), len(ids)
        self.word_at = [i for i, s in enumerate(shown) if s]  # token index of each shown word
        self.reasoning_words = sum(1 for i in self.word_at if ids[i] != answer_word)
        self.started: dict[str, float] = {}

    def start(self, text, conversation_id):
        """The turn's direct call: note when it started (its first token is due now); clear the box."""
        found = TAG.search(text or "")
        tag = found.group(1) if found else str(len(self.started))
        self.started[tag] = time.time()
        return [{"role": "user", "content": [{"type": "text", "text": text}]}], [], tag, ""

    def _live(self, words: int) -> list[dict]:
        """The live panel with the first `words` words: a thought message, then the answer."""
        answer_words = max(words - self.reasoning_words, 0)
        thought = {"role": "assistant", "content": [{"type": "text", "text": WORD * min(words, self.reasoning_words)}],
                   "metadata": {"title": "Thinking", "status": "done" if answer_words else "pending"}}
        answer = [{"role": "assistant", "content": [{"type": "text", "text": ANSWER_WORD * answer_words}]}]
        return [thought] + (answer if answer_words else [])

    async def follow(self, tag):
        """The queued stream: what has been emitted so far, one update per pace interval."""
        t0 = self.started.pop(tag)
        history = [{"role": "user", "content": [{"type": "text", "text": f"[{tag}]"}]}]
        last_due = t0 + (self.tokens - 1) / self.rate  # the app's turn wakes its pages at the end
        self.pace.join()
        try:
            while (due := int((time.time() - t0) * self.rate) + 1) < self.tokens:  # tokens emitted by now
                yield history, self._live(bisect.bisect_left(self.word_at, due))
                await asyncio.sleep(max(min(self.pace.interval(), last_due - time.time()), 0.005))
        finally:
            self.pace.leave()
        self.log.write(tag, [t0 + i / self.rate for i in self.word_at])
        yield history + self._live(len(self.word_at)), []


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    page = FloorPage(load_encoding(ROOT / "data" / "vocab"), args.rate, EmissionLog(Path(args.log)))
    launch(build(page.start, page.follow, CAPACITY), args.port, CAPACITY)


if __name__ == "__main__":
    main()

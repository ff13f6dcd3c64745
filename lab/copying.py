"""Copy practice: short sequences that give the demo model a copying circuit before it learns chats.

Every python answer copies numbers from the question into the program (`37, 15, 16` becomes
`print(sorted([37, 15, 16]))`). That takes an induction circuit: look back for where the
last-copied token stood and copy what followed it. The conversations alone never grew one in this
3-layer model (sorting 0-4 of 30 after five recipes, see README). Practice does, in two steps:

1. tokens: a run of 8-24 distinct random ids, some other text, then the same run again. Each next
   id is fixed by the one before it, so a one-step look-back suffices; learning this is a sudden
   drop in loss at a learning rate of 1e-3 (at 3e-3 it never came). Long runs give more to copy per
   sequence, and the drop comes early and at a steady step: with runs of 3-10 ids it came anywhere
   from step ~700 to past 2,000 (seed 1: still no drop at step 1,000), with runs of 8-24 at steps
   718, 708 and 719 (seeds 1, 2, 3; the loss averaged over 50 steps under 0.8).
2. lists: numbers joined by ", " in the wrappers the chats use. `,` and ` ` recur, so the look-back
   must now key on the last number, two or three tokens back, and reach across up to 150 tokens.
   Numbers 0-199 and single numbers too: a sum's result (up to 198) is copied from python's output
   into "The answer is N." (all ten wrong sums of the weights before had a 3-digit result).

The filler between the two copies is cut from the training conversations, so the practice reads
like the chats. Only the second copy is learned.
"""

from __future__ import annotations

import random

MODES = ("tokens", "lists")
# (around the numbers where they are given, before and after where they are copied to)
WRAPS = ((": ", ".", "print(sorted([", "]))"), (": ", ".", "Repeat: ", "."), (" ", "?", "print(", ")"),
         (": ", ".", "[", "]"), ("\n", "\n", "The answer is ", "."), ("[", "]\n", "Sorted: ", "."))
# Filler lengths (before the first copy, between the copies): short while the circuit forms, then the
# distances the chats have between a question and its program.
FILLER = {"tokens": (10, 20), "lists": (30, 120)}
RUN = (8, 24)  # ids in a token run
NUMBERS = 200  # 0-199: every sum of two numbers up to 99, as python prints it


class CopyPractice:
    """Draws practice sequences as (ids, learn) pairs, in the form the corpus has."""

    def __init__(self, encoding, corpus: list[tuple[list[int], list[bool]]], special: set[int]):
        self.encode = lambda text: encoding.encode(text, allowed_special="all")
        self.corpus = corpus
        self.numbers = {n: self.encode(str(n)) for n in range(NUMBERS)}
        self.sep = self.encode(", ")
        self.wraps = [tuple(self.encode(part) for part in wrap) for wrap in WRAPS]
        # Plain text ids only: a special token in the middle of practice would teach nonsense harmony.
        self.plain = sorted({t for seq, _ in corpus for t in seq} - special)

    def ids(self) -> set[int]:
        """Every id practice can write, so the trained vocabulary includes them."""
        found = {t for v in self.numbers.values() for t in v} | set(self.sep)
        return found | {t for wrap in self.wraps for part in wrap for t in part}

    def draw(self, rng: random.Random, mode: str) -> tuple[list[int], list[bool]]:
        run = rng.sample(self.plain, rng.randint(*RUN)) if mode == "tokens" else self.number_list(rng)
        pre, post, into, close = rng.choice(self.wraps)
        before, between = FILLER[mode]
        given = self.filler(rng, before) + pre + run + post + self.filler(rng, between) + into
        written = run + close
        return given + written, [False] * len(given) + [True] * len(written)

    def number_list(self, rng: random.Random) -> list[int]:
        out: list[int] = []
        for i in range(rng.randint(1, 8)):
            out += (self.sep if i else []) + self.numbers[rng.randrange(NUMBERS)]
        return out

    def filler(self, rng: random.Random, longest: int) -> list[int]:
        seq = self.corpus[rng.randrange(len(self.corpus))][0]
        start = rng.randrange(len(seq))
        return seq[start:start + rng.randint(0, longest)]

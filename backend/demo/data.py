"""Synthetic harmony conversations for the demo model (seeded, so builds are repeatable).

Tasks: addition, subtraction, unit conversion, counting letters, sorting short
lists, and calling a weather function when the developer message offers it.
Reasoning length follows the effort: low is one line, high shows all the work.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from core.config import EFFORTS

TASKS = ("add", "subtract", "convert", "count", "sort", "tool")
UNITS = [("km", "m", 1000), ("kg", "g", 1000), ("hours", "minutes", 60), ("minutes", "seconds", 60),
         ("m", "cm", 100)]
WORDS = ["strawberry", "banana", "apple", "cherry", "letter", "balloon", "mississippi", "coffee", "pepper",
         "grammar", "bookkeeper", "committee", "parallel", "success", "rhythm", "tomato", "potato", "llama"]
CITIES = ["Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "Oslo", "Lima", "Cairo", "Delhi"]
WEATHER_TOOL = {"name": "get_weather", "description": "Get the current weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}}


@dataclass
class Sample:
    task: str
    effort: str
    question: str
    reasoning: str
    answer: str  # the final answer, or the JSON arguments of a tool call
    expected: str  # what a correct answer must contain
    tool: bool = False


def _ordinal_positions(word: str, letter: str) -> list[int]:
    return [i + 1 for i, ch in enumerate(word) if ch == letter]


def add(rng: random.Random, effort: str) -> Sample:
    a, b = rng.randint(1, 99), rng.randint(1, 99)
    s = a + b
    q = rng.choice([f"What is {a} + {b}?", f"Add {a} and {b}.", f"Compute {a} + {b}."])
    r = {"low": f"{a} + {b} = {s}.",
         "medium": f"Add {a} and {b}. Tens: {a // 10 * 10} + {b // 10 * 10} = {a // 10 * 10 + b // 10 * 10}. "
                   f"Ones: {a % 10} + {b % 10} = {a % 10 + b % 10}. Total {s}.",
         "high": f"The user wants the sum of {a} and {b}. Split into tens and ones. "
                 f"Tens: {a // 10 * 10} + {b // 10 * 10} = {a // 10 * 10 + b // 10 * 10}. "
                 f"Ones: {a % 10} + {b % 10} = {a % 10 + b % 10}. "
                 f"Combine: {a // 10 * 10 + b // 10 * 10} + {a % 10 + b % 10} = {s}. "
                 f"Check: {s} - {b} = {a}. Correct. Answer {s}."}[effort]
    return Sample("add", effort, q, r, f"{a} + {b} = {s}", str(s))


def subtract(rng: random.Random, effort: str) -> Sample:
    a, b = sorted((rng.randint(1, 99), rng.randint(1, 99)), reverse=True)
    d = a - b
    q = rng.choice([f"What is {a} - {b}?", f"Subtract {b} from {a}."])
    r = {"low": f"{a} - {b} = {d}.",
         "medium": f"Take {b} from {a}. {a} - {b // 10 * 10} = {a - b // 10 * 10}. "
                   f"{a - b // 10 * 10} - {b % 10} = {d}.",
         "high": f"The user wants {a} minus {b}. First remove the tens of {b}: {a} - {b // 10 * 10} = "
                 f"{a - b // 10 * 10}. Then the ones: {a - b // 10 * 10} - {b % 10} = {d}. "
                 f"Check: {d} + {b} = {a}. Correct. Answer {d}."}[effort]
    return Sample("subtract", effort, q, r, f"{a} - {b} = {d}", str(d))


def convert(rng: random.Random, effort: str) -> Sample:
    big, small, factor = rng.choice(UNITS)
    n = rng.randint(1, 12)
    v = n * factor
    q = rng.choice([f"How many {small} are in {n} {big}?", f"Convert {n} {big} to {small}."])
    r = {"low": f"{n} x {factor} = {v}.",
         "medium": f"1 {big} is {factor} {small}. So {n} {big} is {n} x {factor} = {v} {small}.",
         "high": f"The user wants {n} {big} in {small}. One {big} equals {factor} {small}. "
                 f"Multiply: {n} x {factor} = {v}. Check: {v} / {factor} = {n}. Answer {v} {small}."}[effort]
    return Sample("convert", effort, q, r, f"{n} {big} = {v} {small}", str(v))


def count(rng: random.Random, effort: str) -> Sample:
    word = rng.choice(WORDS)
    letter = rng.choice(sorted(set(word)))
    pos = _ordinal_positions(word, letter)
    q = rng.choice([f"How many {letter}'s are in {word}?", f"Count the letter {letter} in {word}."])
    spelled = "-".join(word)
    r = {"low": f"{spelled}: {len(pos)}.",
         "medium": f"Spell it: {spelled}. {letter} at {', '.join(map(str, pos))}. Count {len(pos)}.",
         "high": f"The user asks how often {letter} occurs in {word}. Spell the word: {spelled}. "
                 f"{letter} is at positions {', '.join(map(str, pos))}. "
                 f"That is {len(pos)} time{'s' if len(pos) != 1 else ''}. Answer {len(pos)}."}[effort]
    return Sample("count", effort, q, r, f"There {'are' if len(pos) != 1 else 'is'} {len(pos)} {letter} in {word}.",
                  str(len(pos)))


def sort(rng: random.Random, effort: str) -> Sample:
    nums = rng.sample(range(1, 50), rng.randint(3, 5))
    ordered = sorted(nums)
    joined, out = ", ".join(map(str, nums)), ", ".join(map(str, ordered))
    q = rng.choice([f"Sort these numbers: {joined}.", f"Put in order: {joined}."])
    steps = " ".join(f"Smallest left is {x}." for x in ordered)
    r = {"low": f"Sorted: {out}.",
         "medium": f"Numbers: {joined}. {steps} Result {out}.",
         "high": f"The user wants {joined} in increasing order. Pick the smallest each time. {steps} "
                 f"Check that each is larger than the one before. Result {out}."}[effort]
    return Sample("sort", effort, q, r, out, out)


def tool(rng: random.Random, effort: str) -> Sample:
    city = rng.choice(CITIES)
    q = rng.choice([f"What is the weather in {city}?", f"Is it raining in {city}?"])
    r = {"low": f"Call get_weather for {city}.",
         "medium": f"The user wants the weather in {city}. I can call get_weather.",
         "high": f"The user asks about the weather in {city}. I have a get_weather tool that takes a city. "
                 f"Call it with {city}."}[effort]
    return Sample("tool", effort, q, r, '{"city": "' + city + '"}', city, tool=True)


MAKERS = {"add": add, "subtract": subtract, "convert": convert, "count": count, "sort": sort, "tool": tool}


def make_samples(n: int, seed: int) -> list[Sample]:
    rng = random.Random(seed)
    return [MAKERS[rng.choice(TASKS)](rng, rng.choice(EFFORTS)) for _ in range(n)]

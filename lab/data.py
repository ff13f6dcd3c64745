"""Synthetic harmony conversations for the demo model (seeded, so builds are repeatable).

Tasks: addition, subtraction, unit conversion, counting letters, sorting short
lists, and calling a weather function when the developer message offers it (and saying it cannot when
it is not offered); a greeting or anything else gets a short answer that says what it can do.
Reasoning length follows the effort: low is one line, high shows all the work. Questions come in
everyday phrasings too ("please", lowercase, "can you", a second line), and half the conversations
continue a chat of 1-5 earlier questions, rendered as the app renders them (harmony keeps only the
earlier final answers), so the model copies from the question and python output of the turn at hand.

A tiny model cannot do arithmetic in its head, but it can do what gpt-oss does: with the python
tool offered, sums, differences, sorting and counting are a short thought, a one-line program sent
to python, the tool's output read back, and the answer copied from it. Without the tool it says it
would need it rather than make a number up. Conversions and the weather call are patterns it knows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from core.config import EFFORTS

TASKS = ("add", "subtract", "convert", "count", "sort", "tool", "other")
UNITS = [("km", "m", 1000), ("kg", "g", 1000), ("hours", "minutes", 60), ("minutes", "seconds", 60),
         ("m", "cm", 100)]
WORDS = ["strawberry", "banana", "apple", "cherry", "letter", "balloon", "mississippi", "coffee", "pepper",
         "grammar", "bookkeeper", "committee", "parallel", "success", "rhythm", "tomato", "potato", "llama"]
CITIES = ["Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "Oslo", "Lima", "Cairo", "Delhi"]
WEATHER_TOOL = {"name": "get_weather", "description": "Get the current weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}}


PYTHON_TASKS = ("add", "subtract", "count", "sort")  # what the demo model hands to python
NO_TOOL = {"low": "I need python for this, and it is not offered.",
           "medium": "An exact answer needs the python tool, which is not offered here. I should not guess.",
           "high": "The user wants an exact result. I compute such things with the python tool, but no python "
                   "tool is offered in this conversation, so any number I wrote would be a guess. Say so."}
NO_TOOL_ANSWER = "I would need the python tool to answer this exactly. Please tick python under Tools."
# With python, a high-effort thought opens without the numbers: each restated number is one more copy a
# tiny model can get wrong, and a wrong one in the thought is then copied into the program.
HIGH_OPENING = {"add": "The user wants the sum of two numbers", "subtract": "The user wants the difference of two numbers",
                "sort": "The user wants these numbers in increasing order"}
# With the copying circuit (copying.py) numbers are copied exactly, so sums and sorting need fewer
# examples. A city or a word is written without its leading space in JSON and code (" Oslo" in the
# question, "Oslo" in the call: another token), a mapping learned per name, so those get more.
TASK_WEIGHTS = {"add": 3, "subtract": 3, "sort": 3, "count": 4, "convert": 3, "tool": 3, "other": 1}
# How often python is offered (python task or not). Without python most conversations end in "I would need
# the python tool"; with the weather and conversions offered it at 80 % too, one run answered that to the
# weather at high effort (7 of 20), so they see it missing more often.
PYTHON_SHARE = {True: 0.8, False: 0.5}
FUNCTION_SHARE = 0.75  # a weather question with get_weather offered; otherwise it must say it cannot call it
FOLLOW_UP_SHARE, MAX_EARLIER = 0.5, 5  # conversations that continue a chat, and of how many earlier questions
REPHRASED_SHARE = 0.4  # questions in an everyday phrasing
NO_FUNCTION = {"low": "No weather function is offered.",
               "medium": "The user wants the weather, but no weather function is offered here. Say so.",
               "high": "The user asks about the weather. I can only check it with a get_weather function, and the "
                       "developer message offers none, so I must not call one. Say that I cannot check it."}
NO_FUNCTION_ANSWER = "I cannot check the weather here: no weather function is offered."
CAPABILITIES = ("I am a small demo model. I can add, subtract and sort numbers and count letters with python, "
                "convert units, and check the weather with a weather function.")
GREETINGS = ["hello", "Hello!", "hi", "Hi there", "hey", "Good morning!", "Hi, who are you?", "What can you do?",
             "how are you?", "Hello, what can you help with?"]
THANKS = ["thanks", "Thank you!", "thanks a lot", "ok thanks"]
OTHER = ["Write a poem about the sea.", "Tell me a joke.", "What is the capital of France?",
         "Summarize this text for me.", "Translate hello into German.", "Who won the match yesterday?"]
OTHER_THOUGHT = {"low": "Not a task I do. Say what I can do.",
                 "medium": "This is not one of my tasks. I answer briefly and say what I can do.",
                 "high": "The user wrote something that is not a sum, a difference, sorting, counting, a conversion "
                         "or the weather. I should not make something up. I answer briefly and say what I can do."}


@dataclass
class Sample:
    task: str
    effort: str
    question: str
    reasoning: str
    answer: str  # the final answer, or the JSON arguments of a tool call
    expected: str  # what a correct answer must contain
    tool: bool = False  # a get_weather call
    python: bool = False  # the python tool is offered
    functions: bool | None = None  # get_weather offered: True, never (False), or as it happens (None)
    code: str | None = None  # with python: the program sent to it ...
    after: str = ""  # ... and the thought after reading its output
    earlier: list = field(default_factory=list)  # the chat's earlier questions (Samples), oldest first
    cell: str = ""  # the evaluation's cell it is counted in (lab/evaluate.py); empty: its task's


def with_python(s: Sample, code: str, output: str, thought: dict) -> Sample:
    """The same question answered the way gpt-oss does it: think, run python, read, answer."""
    s.python, s.code = True, code
    # The numbers are copied once into the program and once from python's output into the answer, never
    # restated in between: every copy is a chance for a tiny model to slip.
    opening = HIGH_OPENING.get(s.task, s.reasoning.split(".")[0])
    s.reasoning = {"low": "Use python.", "medium": "Exact work: I will run it in python and read the result.",
                   "high": f"{opening}. Doing this in my head is error-prone, so I will run "
                           "it in python and read the result."}[s.effort]
    s.after = thought[s.effort].format(out=output.strip())
    if s.task in ("add", "subtract"):  # "a + b = s" invited adding in the head instead of copying s
        s.answer = f"The answer is {output.strip()}."
    elif s.task == "sort":  # python's list copied into a wrapper that copy practice also has
        s.answer = f"Sorted: {s.expected}."
    return s


def without_python(s: Sample) -> Sample:
    """No python offered: say so instead of making a number up."""
    s.reasoning, s.answer, s.expected = NO_TOOL[s.effort], NO_TOOL_ANSWER, "python tool"
    return s


def python_output(code: str) -> str:
    """What python prints for one of the demo's one-line programs (the same as the sandbox would)."""
    import contextlib
    import io

    buffer = io.StringIO()
    allowed = {"print": print, "sorted": sorted, "sum": sum}
    with contextlib.redirect_stdout(buffer):
        exec(code, {"__builtins__": allowed})  # noqa: S102 - our own fixed programs
    return buffer.getvalue()


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


def no_function(s: Sample) -> Sample:
    """A weather question with no weather function offered: say so, never call one."""
    s.tool, s.functions = False, False
    s.reasoning, s.answer, s.expected = NO_FUNCTION[s.effort], NO_FUNCTION_ANSWER, "weather function"
    return s


def other(rng: random.Random, effort: str) -> Sample:
    """A greeting, thanks or a request outside its tasks: a short answer that says what it can do."""
    kind = rng.choice(["greet", "greet", "thanks", "other"])
    question = rng.choice({"greet": GREETINGS, "thanks": THANKS, "other": OTHER}[kind])
    opening = {"greet": "Hello! ", "thanks": "You are welcome! ", "other": "I cannot help with that. "}[kind]
    return Sample("other", effort, question, OTHER_THOUGHT[effort], opening + CAPABILITIES, "I can")


MAKERS = {"add": add, "subtract": subtract, "convert": convert, "count": count, "sort": sort, "tool": tool,
          "other": other}
AFTER = {"low": "Done.", "medium": "python answered. I give its result.",
         "high": "The tool answered with exactly what the user asked for, so I give its result as it printed it."}


def make(task: str, rng: random.Random, effort: str, python: bool | None, functions: bool = True) -> Sample:
    """One sample; for the python tasks `python` says whether the tool is offered; for the weather whether
    get_weather is (`functions`)."""
    s = MAKERS[task](rng, effort)
    if task == "tool" and not functions:
        s.python = bool(python)
        return no_function(s)
    if task not in PYTHON_TASKS or python is None:
        s.python = bool(python)
        return s
    if not python:
        return without_python(s)
    return with_python(s, CODE[task](s), python_output(CODE[task](s)), AFTER)


CODE = {
    "add": lambda s: "print(" + s.answer.split(" = ")[0] + ")",
    "subtract": lambda s: "print(" + s.answer.split(" = ")[0] + ")",
    "sort": lambda s: "print(sorted([" + s.question.split(": ", 1)[1].rstrip(".") + "]))",
    # The letter before the word, as the question has them ("n in banana"): with the word first
    # (`'banana'.count('n')`) the model often wrote a letter of the word instead of the one asked for.
    "count": lambda s: "print(sum(ch == {!r} for ch in {!r}))".format(s.answer.split()[3],
                                                                       s.answer.split(" in ")[1].rstrip(".")),
}


def draw(rng: random.Random, effort: str, python: bool, functions: bool, tasks=TASKS) -> Sample:
    task = rng.choices(tasks, [TASK_WEIGHTS[t] for t in tasks])[0]
    return make(task, rng, effort, python, functions)


def make_samples(n: int, seed: int) -> list[Sample]:
    """Python offered in most conversations (as the app offers it), so the model learns both sides; half
    continue a chat (its earlier questions answered the same way, in the same chat's settings)."""
    rng = random.Random(seed)
    samples = []
    for _ in range(n):
        task, effort = rng.choices(TASKS, [TASK_WEIGHTS[t] for t in TASKS])[0], rng.choice(EFFORTS)
        python, functions = rng.random() < PYTHON_SHARE[task in PYTHON_TASKS], rng.random() < FUNCTION_SHARE
        s = make(task, rng, effort, python, functions)
        if rng.random() < REPHRASED_SHARE:
            s.question = rephrase(s.question, rng, city=s.task == "tool")
        if rng.random() < FOLLOW_UP_SHARE:  # earlier questions: no weather call (its result would be typed)
            s.earlier = [draw(rng, rng.choice(EFFORTS), python, functions, EARLIER_TASKS)
                         for _ in range(rng.randint(1, MAX_EARLIER))]
        samples.append(s)
    return samples


EARLIER_TASKS = tuple(t for t in TASKS if t != "tool")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# Everyday phrasings, each one change to a question (`rephrase` picks one; the evaluation's held-out
# phrasings combine two, see lab/evaluate.py).
REPHRASINGS = {
    "please": lambda q, rng: rng.choice(["Please ", "please "]) + _lower_first(q),
    "please after": lambda q, rng: q.rstrip("?.") + rng.choice([", please?", " please", ". Please."]),
    "lowercase": lambda q, rng: q.lower(),
    "can you": lambda q, rng: (rng.choice(["Can you ", "can you ", "Could you "])
                               + ("tell me " if q.split()[0] in ("What", "How", "Is") else "")
                               + _lower_first(q.rstrip("?.")) + "?"),
    "what's": lambda q, rng: q.replace("What is", rng.choice(["What's", "what's", "whats"])),
    "before": lambda q, rng: rng.choice(["Quick question: ", "Hi! ", "Hey, ", "I need help. ", "One more: "]) + q,
    "after": lambda q, rng: q + rng.choice([" Thanks!", " Thank you.", " thx", " :)"]),
    "two lines": lambda q, rng: rng.choice([q.rstrip("?.") + "\nplease", "Hi!\n" + q, q.replace(": ", ":\n", 1)]),
    "period": lambda q, rng: q.rstrip("?") + "." if q.endswith("?") else q.rstrip(".") + "?",
}


def rephrase(question: str, rng: random.Random, city: bool = False, changes: int = 1,
             names: tuple[str, ...] = tuple(REPHRASINGS)) -> str:
    """The question in an everyday phrasing (`changes` of them, one after the other). A city keeps its
    capital (" oslo" would be another token than the name the call writes)."""
    for name in rng.sample([n for n in names if not (city and n == "lowercase")], changes):
        question = REPHRASINGS[name](question, rng)
    return question

"""A stored turn read as the steps a person follows: thought, tool run, thought, answer.

The trace of a message is an ordered list of typed steps (core/trace.py); this turns it into
display steps with their headings ("Thought for 3 s", "Ran python · 0.4 s", "Searched 'x' ·
5 results"), shared by the chat page and the read-only share page so both say the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from core.records import MessageView
from core.trace import PreambleStep, ReasoningStep, ToolCallStep, ToolResultStep

CITATION = re.compile(r"【(\d+)†L(\d+)(?:-L(\d+))?】")  # the browser's citation markup in an answer


@dataclass
class DisplayStep:
    kind: str  # thought | tool | preamble
    title: str
    text: str = ""  # thought or preamble text
    call: ToolCallStep | None = None  # tool: the call
    result: ToolResultStep | None = None  # tool: its result (None while it runs)
    seconds: float | None = None
    pending: bool = False  # the step running now


def display_steps(m: MessageView, streaming: bool = False, include_reasoning: bool = True) -> list[DisplayStep]:
    trace = m.trace or []
    steps: list[DisplayStep] = []
    has_thoughts = any(isinstance(e, ReasoningStep) for e in trace)
    if include_reasoning and m.reasoning and not has_thoughts:  # stored before steps were
        steps.append(DisplayStep("thought", thought_title(m.reasoning_time), m.reasoning, seconds=m.reasoning_time))
    i = 0
    while i < len(trace):
        entry, last = trace[i], i == len(trace) - 1
        if isinstance(entry, ReasoningStep) and include_reasoning and (entry.hidden or entry.summary):
            steps.append(policy_step(entry, m.reasoning[:entry.end],
                                     streaming and (entry.writing or (last and not m.content))))
        elif isinstance(entry, ReasoningStep) and include_reasoning:
            text = m.reasoning[entry.start:entry.end]
            pending = streaming and last and not m.content
            if text.strip():
                steps.append(DisplayStep("thought", "Thinking…" if pending else thought_title(entry.seconds,
                                                                                             entry.tokens),
                                         text, seconds=entry.seconds, pending=pending))
        elif isinstance(entry, ToolCallStep):
            result = trace[i + 1] if i + 1 < len(trace) and isinstance(trace[i + 1], ToolResultStep) else None
            i += result is not None
            title = tool_title(entry, result) if result is not None or streaming else \
                f"{_verbs(entry.recipient, {})[0]} · waiting for its result"  # a paused turn
            steps.append(DisplayStep("tool", title, call=entry, result=result,
                                     seconds=result.seconds if result else None,
                                     pending=result is None and streaming))
        elif isinstance(entry, ToolResultStep):  # a result without its call (never written so, but readable)
            call = ToolCallStep(entry.recipient)
            steps.append(DisplayStep("tool", tool_title(call, entry), call=call, result=entry))
        elif isinstance(entry, PreambleStep):
            steps.append(DisplayStep("preamble", "Preamble", entry.text))
        i += 1
    return steps


HIDDEN = "Reasoning hidden by this deployment"
HIDDEN_TEXT = "This deployment does not show the model's reasoning; its length and time are above."


def _figures(entry: ReasoningStep) -> str:
    tokens, seconds = entry.tokens, entry.seconds
    bits = [f"{tokens} tokens" if tokens else "", "" if seconds is None else _took(seconds)]
    return "".join(f" · {b}" for b in bits if b)


def policy_step(entry: ReasoningStep, summary: str, pending: bool) -> DisplayStep:
    """A reasoning step as --reasoning-display hidden or summary shows it (backend/services/policy.py)."""
    if entry.hidden:
        title = HIDDEN + (" · thinking…" if pending else _figures(entry))
        return DisplayStep("thought", title, HIDDEN_TEXT, seconds=entry.seconds, pending=pending)
    if pending:
        title = "Summarizing the reasoning…" if summary else "Thinking… · a summary follows the answer"
    else:
        title = "Summary of the reasoning" + _figures(entry)
    return DisplayStep("thought", title, summary or ("" if pending else "(No summary.)"),
                       seconds=entry.seconds, pending=pending)


def fold_title(steps: list[DisplayStep]) -> str:
    """The one line a turn's steps fold under, on the page, the share page and in exports: "Thought for
    3.1 s · ran python once", "Thinking…" (the step running now) while it is written."""
    running = [s.title for s in steps if s.pending]
    if running:
        return running[-1]
    thoughts = [s for s in steps if s.kind == "thought"]
    seconds = [s.seconds for s in thoughts if s.seconds is not None]
    bits = [f"Thought for {_took(sum(seconds))}" if seconds else "Thought"] if thoughts else []
    counts: dict[str, int] = {}
    for step in steps:
        if step.kind == "tool":
            done = _verbs(step.call.recipient if step.call else "", {})[0].split(" '")[0]
            counts[done] = counts.get(done, 0) + 1
    bits += [f"{verb.lower() if bits else verb} {_times(n)}" for verb, n in counts.items()]
    return " · ".join(bits) or "Steps"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def thought_title(seconds: float | None, tokens: int | None = None) -> str:
    if seconds is None:
        return "Thought"
    return f"Thought for {_took(seconds)}" + (f" · {tokens} tokens" if tokens else "")


def _took(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"  # "0 s" says nothing of a short thought


def call_arguments(call: ToolCallStep) -> dict:
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def tool_title(call: ToolCallStep, result: ToolResultStep | None) -> str:
    """"Ran python · 0.4 s", "Searched 'gpt-oss license' · 5 results", "Running python…"."""
    done, doing = _verbs(call.recipient, call_arguments(call))
    if result is None:
        return doing + "…"
    bits = [done]
    if result.summary and result.ok:
        bits.append(str(result.summary))
    if result.seconds is not None:
        bits.append(f"{result.seconds:.1f} s")
    if not result.ok:
        bits.append({"error": "failed", "timeout": "timed out", "stopped": "stopped",
                     "killed": "killed"}.get(result.status, result.status))
    return " · ".join(bits)


def _verbs(recipient: str, args: dict) -> tuple[str, str]:
    if recipient == "python":
        return "Ran python", "Running python"
    if recipient == "browser.search":
        query = str(args.get("query", ""))[:80]
        return f"Searched '{query}'", f"Searching '{query}'"
    if recipient == "browser.open":
        return "Opened a page", "Opening a page"
    if recipient == "browser.find":
        pattern = str(args.get("pattern", ""))[:80]
        return f"Found '{pattern}'", f"Finding '{pattern}'"
    name = recipient.removeprefix("functions.")
    return f"Called {name}", f"Calling {name}"


def pages_of(m: MessageView) -> dict[int, dict]:
    """Browser pages the turn saw, by cursor (for its citations)."""
    pages = {}
    for entry in m.trace or []:
        for page in entry.pages if isinstance(entry, ToolResultStep) else []:
            if "link" not in page:
                pages[int(page["cursor"])] = page
    return pages


def link_citations(text: str, pages: dict[int, dict]) -> str:
    """`【3†L10-L15】` -> a Markdown link to page 3's source; unknown cursors stay as written."""
    def link(match):
        page = pages.get(int(match.group(1)))
        if page is None or not page.get("url") or page["url"].startswith("search?"):
            return match.group(0)
        lines = f"L{match.group(2)}" + (f"-L{match.group(3)}" if match.group(3) else "")
        title = str(page.get("title", "source")).replace("[", "(").replace("]", ")")[:60]
        return f"[【{title} {lines}】]({page['url']}#L{match.group(2)})"
    return CITATION.sub(link, text)


def fenced(text: str, language: str = "") -> str:
    """A Markdown code block that the text cannot close early (the fence is longer than any run of
    backticks inside it)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"

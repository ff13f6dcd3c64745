"""Measure the demo model on held-out prompts through the app's own chat loop: the real worker
(continuous batching) and the real sandboxed python tool.

    python -m lab.evaluate [--per-cell 8]

Prints JSON: per task, how many answers parsed as harmony (thought, then a final answer or a tool
call), how many were right, how many called python, and for the python tasks how many called it
correctly (a run that printed the right result); per effort, the mean reasoning length in characters.

Besides one cell per task (each question the first of a new chat, as phrased in training), three cells of
what visitors do: "follow-up" (the 2nd to 5th question of one chat, mixed tasks, python ticked as the
page ticks it), "paraphrased" (every task in held-out everyday phrasings: two changes each, e.g.
lowercase and "thanks" after it) and "tool, no function offered" (a weather question with no function:
it must say so, never call one). "other" is a greeting or a request outside its tasks.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
from collections import defaultdict
from pathlib import Path

from core.config import DEMO_TEMPERATURE, EFFORTS
from core.trace import ToolCallStep, ToolResultStep
from lab.data import PYTHON_TASKS, TASKS, WEATHER_TOOL, make, rephrase

HELD_OUT_SEED = 987654  # the training corpus uses another seed
NO_PYTHON = "add, python not offered"  # sums asked where the tool is not offered: the model must say so
NO_FUNCTION = "tool, no function offered"  # the weather asked where no function is offered: say so
FOLLOW_UP, PARAPHRASED = "follow-up", "paraphrased"
CHAT_TASKS = ("add", "subtract", "sort", "count", "convert")  # a visitor's chat of questions (python ticked)
CHAT_LENGTH = 5


def held_out(per_cell: int, seed: int = HELD_OUT_SEED):
    rng = random.Random(seed)
    samples = [make(task, rng, effort, True if task in PYTHON_TASKS or task == "other" else None)
               for task in TASKS for effort in EFFORTS for _ in range(per_cell)]
    for effort in EFFORTS:
        for _ in range(per_cell):
            sample = make("add", rng, effort, False)
            sample.cell = NO_PYTHON
            samples.append(sample)
            sample = make("tool", rng, effort, True, functions=False)
            sample.cell = NO_FUNCTION
            samples.append(sample)
    for task in TASKS:  # held-out phrasings: two changes to each question
        for effort in EFFORTS:
            for _ in range(per_cell):
                sample = make(task, rng, effort, True)
                sample.question, sample.cell = rephrase(sample.question, rng, city=task == "tool", changes=2), \
                    PARAPHRASED
                samples.append(sample)
    return samples


def held_out_chats(per_cell: int, seed: int = HELD_OUT_SEED + 1) -> list[list]:
    """Chats of CHAT_LENGTH questions, mixed tasks, python ticked; `per_cell` per effort."""
    rng = random.Random(seed)
    return [[make(rng.choice(CHAT_TASKS), rng, effort, True) for _ in range(CHAT_LENGTH)]
            for effort in EFFORTS for _ in range(per_cell)]


def judge(sample, m) -> dict:
    """One stored answer (a MessageView) against what the sample expects."""
    kinds = [e.kind for e in m.trace]
    thought_first = bool(kinds) and kinds[0] == "reasoning"
    calls = [e for e in m.trace if isinstance(e, ToolCallStep)]
    results = [e for e in m.trace if isinstance(e, ToolResultStep)]
    tool_ok = None
    called = any(c.recipient == "python" for c in calls)
    if sample.tool:
        parsed = thought_first and m.stop_reason == "call" and len(calls) == 1 and m.status == "complete"
        right = parsed and calls[0].recipient == "functions.get_weather" and sample.expected in calls[0].arguments
    else:
        parsed = thought_first and m.stop_reason == "return" and bool(m.content) and m.status == "complete"
        right = parsed and sample.expected in m.content
        if sample.code is not None:  # a python task with python offered: the program printed the result
            tool_ok = called and any(r.ok and sample.expected in r.output for r in results)
            right = right and tool_ok
        elif sample.task != "convert":  # a greeting, or python or the function not offered: no call at all
            right = right and not calls
    return {"task": sample.cell or sample.task, "effort": sample.effort, "parsed": parsed, "right": right,
            "tool_ok": tool_ok, "called_python": called, "reasoning_chars": len(m.reasoning)}


def evaluate(service, per_cell: int = 8, temperature: float = DEMO_TEMPERATURE) -> dict:
    """Every held-out question as a chat of its own through `service` (a ChatService whose toolbox has
    python), all at once, as many users would."""
    from backend.services.chat import ChatOptions

    chats = [[s] for s in held_out(per_cell)] + held_out_chats(per_cell)
    results: list = [None] * len(chats)

    def ask(s, conversation_id):
        options = ChatOptions(effort=s.effort, temperature=temperature, max_new_tokens=400,
                              tools=["python"] if s.python else [], functions=[WEATHER_TOOL] if s.tool else None)
        snaps = list(service.send("eval", conversation_id, s.question, options))
        cid = snaps[-1].conversation_id
        return cid, judge(s, service.repo.get("eval", cid).messages[-1])

    def run(i):
        cid, judged = None, []
        for n, s in enumerate(chats[i]):
            cid, result = ask(s, cid)
            if len(chats[i]) > 1 and n:  # a follow-up: the 2nd question of its chat or later
                result = {**result, "task": FOLLOW_UP}
            if len(chats[i]) == 1 or n:
                judged.append(result)
        results[i] = judged

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(chats))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    missing = [chats[i][0].question for i, r in enumerate(results) if r is None]
    if missing:  # a chat that failed on the server: say which, never count it silently
        raise RuntimeError(f"{len(missing)} chats did not finish, e.g. {missing[0]!r}")
    return summarize([r for judged in results for r in judged])


def summarize(results: list[dict]) -> dict:
    by_task, chars = defaultdict(lambda: [0, 0, 0, 0, 0]), defaultdict(list)
    for r in results:
        cell = by_task[r["task"]]
        cell[0] += 1
        cell[1] += r["parsed"]
        cell[2] += r["right"]
        cell[3] += bool(r["tool_ok"])
        cell[4] += r["called_python"]
        chars[r["effort"]].append(r["reasoning_chars"])
    return {
        "tasks": {t: {"n": n, "parsed": p, "right": k, "called_python": c,
                      **({"tool_ok": ok} if t in PYTHON_TASKS else {})}
                  for t, (n, p, k, ok, c) in by_task.items()},
        "parsed": sum(r["parsed"] for r in results), "right": sum(r["right"] for r in results),
        "n": len(results),
        "reasoning_chars_by_effort": {e: round(sum(v) / len(v), 1) for e, v in chars.items()},
    }


def demo_service(folder: Path, codec, data_dir: Path, **worker_kwargs):
    """A ChatService over the demo model with the sandboxed python tool, as the app builds it."""
    from backend.engines.loader import load_model
    from backend.engines.transformers_engine import TransformersEngine
    from backend.services.chat import ChatService
    from backend.serving.host import ModelHost
    from backend.tools.sandbox import PythonSandbox
    from backend.tools.toolbox import PythonTool, Toolbox
    from storage.repository import Repository

    sandbox = PythonSandbox()
    problem = sandbox.probe()
    if problem:
        raise SystemExit(f"the python sandbox does not work here: {problem}")
    host = ModelHost(lambda progress: TransformersEngine(load_model(str(folder)).model, seed=0), codec,
                     {"max_active": 32, "max_waiting": 1000, **worker_kwargs})
    host.start(background=False)
    repo = Repository.open(f"sqlite:///{data_dir / 'eval.db'}")
    return ChatService(repo, host, toolbox=Toolbox({"python": PythonTool(sandbox)})), host


def main() -> None:
    from backend.demo.model import ensure_built
    from backend.harmony.codec import HarmonyCodec
    from backend.harmony.vocab import load_encoding

    parser = argparse.ArgumentParser(description="Evaluate the demo model on held-out prompts.")
    parser.add_argument("--folder", default="data/demo-model")
    parser.add_argument("--per-cell", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=DEMO_TEMPERATURE,
                        help="default: the app's default for the demo model")
    args = parser.parse_args()
    folder = Path(args.folder)
    codec = HarmonyCodec(load_encoding(folder.parent / "vocab"))
    ensure_built(folder, codec)
    with tempfile.TemporaryDirectory() as scratch:
        service, host = demo_service(folder, codec, Path(scratch))
        try:
            report = evaluate(service, args.per_cell, args.temperature)
        finally:
            host.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

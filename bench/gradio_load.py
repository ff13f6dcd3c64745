"""Many browser tabs in one cheap process: Gradio's own queue protocol (sse_v3), as the page speaks it.

Each simulated tab reads the app's /config, keeps every component's value, runs an event the way the
page's JavaScript does (POST queue/join with the inputs' current values, read the session's SSE
stream, apply the streamed diffs to the outputs) and then the events chained after it with `.then`.
It opens the page (the load event and what follows it), presses Enter in the message box, and
records when each page update came and how many words of the synthetic answer (bench/synthetic.py)
were then on the page. JSON lines out, one per tab.

    python -m bench.gradio_load URL --tabs 16 --level 3 --out arrivals.jsonl [--wait-for-go]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time

import httpx
from gradio_client.utils import apply_diff

from bench.synthetic import ANSWER_WORD, WORD


class Tab:
    def __init__(self, http: httpx.AsyncClient, base: str, config: dict):
        self.http, self.base, self.config = http, base, config
        self.api = base.rstrip("/") + config["api_prefix"]
        self.session = secrets.token_hex(6)
        self.values = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}
        self.stateful = {c["id"] for c in config["components"] if c["type"] == "state"}
        self.by_elem = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
        self.by_label = {c.get("props", {}).get("label"): c["id"] for c in config["components"]}
        self.deps = {d["id"]: d for d in config["dependencies"]}
        self.events: dict[str, asyncio.Queue] = {}
        self.pending: set[str] = set()  # events joined and not yet completed
        self.reader: asyncio.Task | None = None
        self.watch = {self.by_elem["chat"], self.by_elem["live"]}
        self.timers = {c["id"]: c["props"].get("value") or 1.0 for c in config["components"] if c["type"] == "timer"}
        self.active = {c["id"]: c["props"].get("active", True) for c in config["components"] if c["type"] == "timer"}
        self.arrivals: list[tuple[float, int]] = []
        self.first_text: float | None = None  # when the live panel first showed any text
        self.updates = 0
        self.errors: list[str] = []

    def dep_for(self, elem_id: str, event: str) -> int:
        target = self.by_elem[elem_id]
        return next(d["id"] for d in self.deps.values() if [target, event] in d["targets"])

    async def _read(self) -> None:
        """The session's one SSE stream; Gradio closes it when no event of the session is pending.
        An event joined while the close was on its way needs the stream again: read on while any is
        pending (the check and the return happen in one step of the loop, so `_call` either sees this
        reader running or finds it done and starts another)."""
        try:
            await self._read_stream()
            while self.pending:
                await self._read_stream()
        except httpx.HTTPError as exc:  # the server went away: every event waiting here ends
            for events in self.events.values():
                events.put_nowait({"msg": "unexpected_error", "message": f"stream lost: {exc!r}"})

    async def _read_stream(self) -> None:
        async with self.http.stream("GET", f"{self.api}/queue/data", params={"session_hash": self.session}) as r:
            async for line in r.aiter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "close_stream":
                    break
                if msg.get("event_id") in self.events:
                    self.events[msg["event_id"]].put_nowait(msg)

    async def run(self, dep_id: int, trigger: int | None = None) -> None:
        """One event, then the events chained after it (as the page's JavaScript runs them)."""
        dep = self.deps[dep_id]
        ok = True
        if dep.get("backend_fn"):
            ok = await self._call(dep, trigger)
        for nxt in self.deps.values():
            if nxt.get("trigger_after") == dep_id and (ok or not nxt.get("trigger_only_on_success")):
                await self.run(nxt["id"])

    async def _call(self, dep: dict, trigger) -> bool:
        data = [None if i in self.stateful else self.values.get(i) for i in dep["inputs"]]
        body = {"data": data, "fn_index": dep["id"], "session_hash": self.session, "event_data": None,
                "trigger_id": trigger}
        if dep.get("queue") is False:  # a direct call: one POST, the outputs in its answer
            response = await self.http.post(f"{self.api}/run/predict", json=body)
            if response.status_code != 200:
                self.errors.append(f"run {response.status_code}: {response.text[:200]}")
                return False
            self._apply(dep["outputs"], response.json().get("data") or [], diffs=False)
            return True
        response = await self.http.post(f"{self.api}/queue/join", json=body)
        if response.status_code != 200:
            self.errors.append(f"join {response.status_code}: {response.text[:200]}")
            return False
        event_id = response.json()["event_id"]
        events = self.events.setdefault(event_id, asyncio.Queue())
        self.pending.add(event_id)
        try:
            return await self._follow_event(dep, events)
        finally:
            self.pending.discard(event_id)

    async def _follow_event(self, dep: dict, events: asyncio.Queue) -> bool:
        if self.reader is None or self.reader.done():
            self.reader = asyncio.create_task(self._read())
        first = True
        while True:
            msg = await events.get()
            kind = msg.get("msg")
            if kind in ("process_generating", "process_completed"):
                output = msg.get("output") or {}
                if not msg.get("success", True) or "error" in output and output["error"]:
                    self.errors.append(str(output.get("error"))[:200])
                    return False
                self._apply(dep["outputs"], output.get("data") or [], diffs=kind == "process_generating"
                            and not first)
                first = first and kind != "process_generating"
                if kind == "process_completed":
                    return True
            elif kind == "unexpected_error":
                self.errors.append(msg.get("message", "unexpected error"))
                return False

    def _apply(self, outputs: list[int], data: list, diffs: bool) -> None:
        touched = False
        for block, value in zip(outputs, data):
            if block in self.stateful or value is None and not diffs:
                continue
            if diffs:
                value = apply_diff(self.values.get(block), value)
            elif isinstance(value, dict) and value.get("__type__") == "update":
                if "active" in value:  # a Timer switched on or off
                    self.active[block] = value["active"]
                if "value" not in value:
                    continue
                value = value["value"]
            self.values[block] = value
            touched |= block in self.watch
        if touched:
            if self.first_text is None and _has_text(self.values.get(self.by_elem["live"])):
                self.first_text = time.time()
            self.updates += 1
            shown = sum(json.dumps(self.values[b]).count(w.strip()) for b in self.watch for w in (WORD, ANSWER_WORD))
            self.arrivals.append((time.time(), shown))


    async def tick(self, timer: int) -> None:
        """A gr.Timer: its tick events every interval while it is active (the page keeps them running)."""
        deps = [d["id"] for d in self.deps.values() if [timer, "tick"] in d["targets"]]
        while True:
            await asyncio.sleep(self.timers[timer])
            if self.active.get(timer):
                for dep in deps:
                    await self.run(dep)


def _has_text(messages) -> bool:
    """Any message with content (a chatbot value in the page's form)."""
    for m in messages or []:
        content = m.get("content") if isinstance(m, dict) else None
        parts = content if isinstance(content, list) else [content]
        if any((p.get("text") if isinstance(p, dict) else p) for p in parts):
            return True
    return False


async def one_tab(http, base: str, config: dict, tag: str, gate: asyncio.Event, ready: list,
                  question: str | None = None, settings: dict | None = None) -> dict:
    tab = Tab(http, base, config)
    loads = [d["id"] for d in tab.deps.values() if any(event == "load" for _, event in d["targets"])]
    await asyncio.gather(*(tab.run(dep) for dep in loads))  # open the page
    timers = [asyncio.create_task(tab.tick(t)) for t in tab.timers]
    ready.append(1)
    await gate.wait()
    tab.arrivals.clear()
    tab.updates, tab.first_text = 0, None
    t0 = time.time()
    for label, value in (settings or {}).items():  # the user sets effort, temperature, max tokens
        if label == "conversation_id":  # an existing conversation, as if opened from the sidebar
            tab.values[tab.by_elem["conversation-id"]] = value
        else:
            tab.values[tab.by_label[label]] = value
    tab.values[tab.by_elem["message"]] = question or f"Tell me about stripes [{tag}]"
    try:
        await tab.run(tab.dep_for("message", "submit"), trigger=tab.by_elem["message"])
    finally:
        for t in timers:
            t.cancel()
    return {"tag": tag, "t0": t0, "end": time.time(), "updates": tab.updates, "arrivals": tab.arrivals,
            "errors": tab.errors, "first_text": tab.first_text, "conversation_id": tab.values.get(tab.by_elem["conversation-id"])}


async def main_async(url: str, tabs: int, level: int, go_signal: bool = False, questions: list | None = None,
                     settings: dict | None = None) -> list[dict]:
    limits = httpx.Limits(max_connections=4 * tabs + 8, max_keepalive_connections=2 * tabs + 8)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits) as http:
        config = (await http.get(url.rstrip("/") + "/config")).json()
        gate, ready = asyncio.Event(), []
        tasks = [asyncio.create_task(one_tab(http, url, config, f"{level}-{i}", gate, ready,
                                             questions[i % len(questions)] if questions else None, settings))
                 for i in range(tabs)]
        while len(ready) < tabs and not any(t.done() for t in tasks):
            await asyncio.sleep(0.05)
        if go_signal:  # the caller reads the server's CPU now, to leave opening the pages out
            print("loaded", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        gate.set()  # every tab presses Enter at the same moment
        return await asyncio.gather(*tasks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--tabs", type=int, default=1)
    parser.add_argument("--level", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--wait-for-go", action="store_true",
                        help='print "loaded" once every tab is open, then wait for a line on stdin')
    parser.add_argument("--questions", help="JSON list of messages, one per tab (default: tagged ones)")
    parser.add_argument("--settings", help='JSON {label: value} set before sending, e.g. {"Temperature": 0}; '
                                           '"conversation_id" continues that conversation')
    args = parser.parse_args()
    results = asyncio.run(main_async(args.url, args.tabs, args.level, args.wait_for_go,
                                     json.loads(args.questions) if args.questions else None,
                                     json.loads(args.settings) if args.settings else None))
    with open(args.out, "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()

"""A load run that kills the model's process: nothing is lost and the app recovers by itself.

The real app on the demo model in its own process (as `python app.py` runs it without a GPU). At once:
API chats over /v1 (streams read to the end, streams dropped mid-answer, whole answers, clients that
hang up on a whole answer) and page chats through Gradio's API (/send; some stopped with /stop, some
left by their tab, as a reload does). While they run, the model's process is killed with SIGKILL
(as the kernel's OOM killer would). Then a second wave of chats. Printed as JSON:

- `sent` / `stored` / `refused_and_told` / `lost`: every chat's user message is stored (API requests
  with store: true), unless the request was refused before it ran and its client told so (HTTP 503
  while the model restarts); `lost` must be empty;
- `left_streaming`: answers still marked "streaming" once everything ended (must be 0);
- `first_wave`: how the first wave's answers ended (complete, stopped, error, interrupted);
- `second_wave_complete`: chats after the restart answered in full (must be all);
- `restart_s`: from the kill to /healthz saying "ready" again; the app itself never restarts.

    python -m bench.recovery [--chats 40] [--after 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections import Counter

import httpx

from bench.harness import App

TAGS: list[str] = []  # "wave api|page kind i" of every chat sent
OUTCOME: dict[str, str] = {}  # tag -> what its client saw


def api_chat(base: str, tag: str, i: int, kind: str, results: list) -> None:
    TAGS.append(f"{tag} api {kind} {i}")
    results = _Recorder(results, TAGS[-1])
    body = {"model": "", "messages": [{"role": "user", "content": f"What is {i} + {i + 7}? ({tag} api {kind} {i})"}],
            "store": True, "max_tokens": 400, "stream": kind in ("stream", "drop")}
    try:
        timeout = 0.5 if kind == "hangup" else 600
        with httpx.Client(timeout=timeout) as http:
            if body["stream"]:
                with http.stream("POST", base + "v1/chat/completions", json=body) as r:
                    said = r.read().decode(errors="replace") if r.status_code != 200 else ""
                    for n, _ in enumerate(r.iter_lines() if r.status_code == 200 else ()):
                        if kind == "drop" and n == 5:
                            break  # the client goes away mid-answer
            else:
                r = http.post(base + "v1/chat/completions", json=body)
                said = r.text
        if r.status_code == 200:
            results.append((kind, "ok"))
        else:  # refused before it ran (never stored), or its answer ended with the model's process
            refused = "The model is being restarted" in said
            results.append((kind, f"refused {r.status_code}" if refused else f"failed {r.status_code}"))
    except httpx.TimeoutException:
        results.append((kind, "hung up"))
    except httpx.HTTPError as exc:
        results.append((kind, type(exc).__name__))


def page_chat(base: str, tag: str, i: int, kind: str, results: list) -> None:
    TAGS.append(f"{tag} page {kind} {i}")
    results = _Recorder(results, TAGS[-1])
    from gradio_client import Client

    client = Client(base, verbose=False)
    job = client.submit(f"What is {i} + 3? ({tag} page {kind} {i})", None, "low", "", 0.7, 400, [], "", api_name="/send")
    conversation = None
    deadline = time.monotonic() + 600
    while conversation is None and not job.done() and time.monotonic() < deadline:
        outputs = job.outputs()
        conversation = outputs[-1][2] if outputs else None
        time.sleep(0.05)
    if kind == "stop" and conversation:
        client.predict(conversation, api_name="/stop")
    if kind == "leave":
        job.cancel()  # the tab goes away; the answer is the server's and goes on
    else:
        try:
            job.result(timeout=600)
        except Exception as exc:  # an answer that ended with the model's process: said on the page
            results.append((kind, type(exc).__name__))
            return
    results.append((kind, "ok"))


class _Recorder:
    def __init__(self, results: list, tag: str):
        self.results, self.tag = results, tag

    def append(self, outcome: tuple[str, str]) -> None:
        self.results.append(outcome)
        OUTCOME[self.tag] = outcome[1]


def wave(base: str, tag: str, chats: int, results: list, kill=None) -> float:
    kinds = ["stream", "drop", "whole", "hangup"]
    threads = [threading.Thread(target=api_chat, args=(base, tag, i, kinds[i % 4], results))
               for i in range(chats * 3 // 4)]
    threads += [threading.Thread(target=page_chat, args=(base, tag, i, ("stop", "leave", "read")[i % 3], results))
                for i in range(chats - len(threads))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    if kill:
        kill()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def final_statuses(repo, wait_s: float = 600) -> dict[str, str]:
    """"wave kind i" -> how its answer ended, once none is streaming (answers whose clients left end on
    the server) or after `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        statuses = {}
        for c in repo.list_conversations("local", limit=100_000):
            messages = repo.get("local", c.id).messages
            user = next(m.content for m in messages if m.role == "user")
            answer = next((m.status for m in messages if m.role == "assistant"), "no answer")
            statuses[user.split("(")[-1].rstrip(")")] = answer
        if "streaming" not in statuses.values() or time.monotonic() > deadline:
            return statuses
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chats", type=int, default=40)
    parser.add_argument("--after", type=int, default=20)
    args = parser.parse_args()
    app = App(None, demo=True, api_store=True, max_active=32, max_waiting=64)
    base, host = app.url, app.host
    killed = {}

    def kill():
        worker, deadline = host.worker(), time.monotonic() + 60
        while worker.active + worker.waiting < args.chats // 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # most chats are under way (the page's clients start a little later)
        killed["in_flight"] = worker.active + worker.waiting
        os.kill(worker.engine._proc.pid, signal.SIGKILL)
        killed["at"] = time.monotonic()
        seen = []
        while not (seen and seen[-1]["restarts"] == 1 and seen[-1]["model"] == "ready"):
            seen.append(httpx.get(base + "healthz").json())
            time.sleep(0.05)
        killed["restart_s"] = round(time.monotonic() - killed["at"], 1)
        killed["healthz_said"] = sorted({h["model"] for h in seen})

    first, second = [], []
    try:
        wave(base, "first", args.chats, first, kill)
        while host.status().state != "ready":
            time.sleep(0.1)
        wave(base, "second", args.after, second)
        statuses = final_statuses(app.service.repo)
        not_stored = sorted(set(TAGS) - set(statuses))
        told = [t for t in not_stored if OUTCOME.get(t, "").startswith("refused")]
        gone = [t for t in not_stored if t not in told and OUTCOME.get(t) == "hung up"]
        report = {
            "machine": f"{os.cpu_count()} cores",
            "sent": args.chats + args.after, "stored": len(statuses),
            # a request refused before it ran (503 while the model restarts) is told so and not stored; a
            # client that hangs up half a second in may be gone before the loaded server reads its request
            "refused_and_told": len(told), "hung_up_before_read": len(gone),
            "lost": [t for t in not_stored if t not in told and t not in gone],
            "left_streaming": sum(1 for s in statuses.values() if s == "streaming"),
            "first_wave_clients": dict(Counter(f"{k}: {r}" for k, r in first)),
            "first_wave_answers": dict(Counter(s for t, s in statuses.items() if t.startswith("first"))),
            "second_wave_clients": dict(Counter(f"{k}: {r}" for k, r in second)),
            "second_wave_answers": dict(Counter(s for t, s in statuses.items() if t.startswith("second"))),
            "in_flight_at_kill": killed.get("in_flight"), "restarts": host.status().restarts,
            "restart_s": killed.get("restart_s"), "healthz_said": killed.get("healthz_said"),
        }
        print(json.dumps(report, indent=2))
    finally:
        app.close()


if __name__ == "__main__":
    main()

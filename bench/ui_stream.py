"""Server CPU time per streamed token: a 200-message conversation against a 2-message one.

Messages are kept short (about 5,000 prompt tokens for 200 of them) so that the tiny
model's prefill, which on a GPU would not be server CPU at all, stays a small part
of what is measured; the page's per-update work grows with the number of messages.

The app runs in this process (tiny GptOss forced to write a long harmony answer);
a simulated tab in a child process (bench/gradio_load.py: the page's own two events,
start then follow) sends the message and reads the stream, so the CPU time measured
here is the server's alone. Rounds alternate between the
two conversations and the median is reported: page-path CPU (Gradio and the chat service's
threads, not the model's) per page update over the whole turn, per update while the answer
streams (the turn's fixed start and end left out: `StreamPhase`), and per turn.

    python -m bench.ui_stream
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time


def client_updates(url: str, cid: str) -> int:
    """One turn through the page's own path (bench/gradio_load.py, another process); page updates."""
    import json
    import tempfile
    from pathlib import Path

    out = Path(tempfile.mkdtemp()) / "tab.jsonl"
    subprocess.run([sys.executable, "-m", "bench.gradio_load", url, "--tabs", "1", "--out", str(out),
                    "--questions", json.dumps(["one more question"]),
                    "--settings", json.dumps({"conversation_id": cid, "Max new tokens": 2000})],
                   check=True, capture_output=True, cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.read_text())["updates"]


def seed_conversation(repo, messages: int) -> str:
    cid = repo.create_conversation("local", f"{messages} messages")
    for i in range(messages):
        if i % 2 == 0:
            repo.add_message("local", cid, "user", f"Question {i}: " + "please explain this topic. " * 2)
        else:
            repo.add_message("local", cid, "assistant", "An answer paragraph with **some** markdown. " * 6,
                             reasoning="Some reasoning. " * 20, effort="medium", status="complete")
    return cid


def thread_cpu() -> dict[int, float]:
    import psutil

    return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}


def page_path_cpu(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU of the Python threads (Gradio, the chat service, the router), not the model's.

    The model runs in continuous batching's generation thread and in torch's native
    worker threads; on a GPU that work is not server CPU at all.
    """
    model = {t.native_id for t in threading.enumerate() if "generation_loop" in t.name}
    python = {t.native_id for t in threading.enumerate()} - model
    return sum(after[i] - before.get(i, 0.0) for i in after if i in python)


class StreamPhase:
    """Page-path CPU while the page's relay streams, from its first update to its last: the per-update cost
    alone, without the turn's fixed start and end (storing, the prompt's render, the chat painted twice)."""

    def __init__(self):
        self.cpu, self.updates = 0.0, 0

    def install(self) -> None:
        from ui.relay import Relay

        original, phase = Relay.stream, self

        async def stream(relay, watch, *args, **kwargs):
            first = None
            async for out in original(relay, watch, *args, **kwargs):
                if first is None:
                    first = thread_cpu()
                else:
                    phase.updates += 1
                yield out
            if first is not None:
                phase.cpu += page_path_cpu(first, thread_cpu())

        Relay.stream = stream

    def take(self) -> tuple[float, int]:
        taken, self.cpu, self.updates = (self.cpu, self.updates), 0.0, 0
        return taken


def main() -> None:
    from bench.harness import App, forced_engine

    phase = StreamPhase()
    phase.install()
    app = App(forced_engine())
    service, url = app.service, app.url
    convs = {n: seed_conversation(service.repo, n) for n in (2, 200)}
    seeded = {n: service.repo.get("local", cid).leaf_id for n, cid in convs.items()}
    per_token, page_per_token, page_per_update = {2: [], 200: []}, {2: [], 200: []}, {2: [], 200: []}
    page_per_turn, updates_per_turn, streaming = {2: [], 200: []}, {2: [], 200: []}, {2: [], 200: []}
    for _ in range(4):
        for n, cid in convs.items():
            phase.take()
            before, threads_before = time.process_time(), thread_cpu()
            updates = client_updates(url, cid)
            cpu, page = time.process_time() - before, page_path_cpu(threads_before, thread_cpu())
            last = service.repo.get("local", cid).messages[-1]
            assert last.status == "complete", last.error
            tokens = (last.reasoning_tokens or 0) + (last.answer_tokens or 0)
            per_token[n].append(cpu / tokens)
            page_per_token[n].append(page / tokens)
            page_per_update[n].append(page / updates)
            page_per_turn[n].append(page)
            stream_cpu, stream_updates = phase.take()
            streaming[n].append(stream_cpu / max(stream_updates, 1))
            updates_per_turn[n].append(updates)
            service.repo.show_branch("local", cid, seeded[n], descend=False)  # the same history next round
    app.close()
    med = {n: statistics.median(v[1:]) for n, v in per_token.items()}  # the first round warms up
    page = {n: statistics.median(v[1:]) for n, v in page_per_token.items()}
    update = {n: statistics.median(v[1:]) for n, v in page_per_update.items()}
    turn = {n: statistics.median(v[1:]) for n, v in page_per_turn.items()}
    stream = {n: statistics.median(v[1:]) for n, v in streaming.items()}
    print(json.dumps({
        "page_path_cpu_ms_per_update_2_messages": round(1000 * update[2], 3),
        "page_path_cpu_ms_per_update_200_messages": round(1000 * update[200], 3),
        "page_path_update_ratio_200_vs_2": round(update[200] / update[2], 3),
        "streaming_cpu_ms_per_update_2_messages": round(1000 * stream[2], 3),
        "streaming_cpu_ms_per_update_200_messages": round(1000 * stream[200], 3),
        "streaming_update_ratio_200_vs_2": round(stream[200] / stream[2], 3),
        "page_path_cpu_ms_per_turn_2_messages": round(1000 * turn[2], 1),
        "page_path_cpu_ms_per_turn_200_messages": round(1000 * turn[200], 1),
        "updates_per_turn": {str(n): v for n, v in updates_per_turn.items()},
        "page_path_cpu_ms_per_token_2_messages": round(1000 * page[2], 3),
        "page_path_cpu_ms_per_token_200_messages": round(1000 * page[200], 3),
        "page_path_ratio_200_vs_2": round(page[200] / page[2], 3),
        "server_cpu_ms_per_token_2_messages": round(1000 * med[2], 3),
        "server_cpu_ms_per_token_200_messages": round(1000 * med[200], 3),
        "ratio_200_vs_2": round(med[200] / med[2], 3),
        "rounds": {str(n): [round(1000 * x, 3) for x in v] for n, v in per_token.items()},
    }, indent=2))


if __name__ == "__main__":
    main()

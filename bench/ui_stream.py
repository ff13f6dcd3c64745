"""Server CPU time per streamed token: a 200-message conversation against a 2-message one.

The app runs in this process (tiny GptOss forced to write a long harmony answer);
a gradio_client in a child process sends the message and reads the stream, so
the CPU time measured here is the server's alone. Rounds alternate between the
two conversations and the median is reported.

    python bench/ui_stream.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENT = """
import sys
from gradio_client import Client
c = Client(sys.argv[1], verbose=False)
c.predict("one more question", sys.argv[2], "medium", "", 1.0, 2000, api_name="/send")
"""


def seed_conversation(repo, messages: int) -> str:
    cid = repo.create_conversation("local", f"{messages} messages")
    for i in range(messages):
        if i % 2 == 0:
            repo.add_message("local", cid, "user", f"Question {i}: " + "please explain this topic. " * 10)
        else:
            repo.add_message("local", cid, "assistant", "An answer paragraph. " * 25,
                             reasoning="Some reasoning. " * 20, effort="medium", status="complete")
    return cid


def main() -> None:
    from bench.harness import App, forced_engine

    app = App(forced_engine())
    service, url = app.service, app.url
    convs = {n: seed_conversation(service.repo, n) for n in (2, 200)}
    per_token = {2: [], 200: []}
    for _ in range(4):
        for n, cid in convs.items():
            before = time.process_time()
            subprocess.run([sys.executable, "-c", CLIENT, url, cid], check=True)
            cpu = time.process_time() - before
            last = service.repo.get("local", cid).messages[-1]
            per_token[n].append(cpu / ((last.reasoning_tokens or 0) + (last.answer_tokens or 0) or 1))
            service.repo.truncate("local", cid, n)  # back to the same history for the next round
    app.close()
    med = {n: statistics.median(v[1:]) for n, v in per_token.items()}  # the first round warms up
    print(json.dumps({
        "server_cpu_ms_per_token_2_messages": round(1000 * med[2], 3),
        "server_cpu_ms_per_token_200_messages": round(1000 * med[200], 3),
        "ratio_200_vs_2": round(med[200] / med[2], 3),
        "rounds": {str(n): [round(1000 * x, 3) for x in v] for n, v in per_token.items()},
    }, indent=2))


if __name__ == "__main__":
    main()

"""How many chats the app itself can stream at GPU speed: the page's ceiling, with no model in the way.

For each path — the in-process engine (`inprocess`) and `--engine openai` against a stand-in server in
chat mode (`openai-chat`) and token mode (`openai-tokens`) — the real app runs in its own process
around bench/synthetic.py (300 tokens per answer at --rate tokens/s per stream), and the simulated
tabs of bench/gradio_load.py, in another process, all press Enter at once, at 1, 4, 16 and 64 tabs.

Server CPU is read from /proc once every tab has opened the page (opening 64 pages is not part of
streaming) until the last answer has arrived. Per level, JSON: offered and delivered tokens/s and their ratio, wall time against the ideal, p50 /
p95 / max lag between a word's emission and its arrival in a tab, page updates per stream per second
(mean and max), the app's CPU per page update and per token (from /proc), the clients' and the
stand-in server's CPU, and errors. Targets (16 x 100 tok/s: >= 95 % delivered, p95 lag <= 250 ms;
64 x 100: >= 90 %, <= 1 s; <= 2 ms app CPU per update) are printed beside the figures.

    python -m bench.app_ceiling [--modes inprocess openai-chat openai-tokens] [--levels 1 4 16 64] [--repeat 3]
    python -m bench.app_ceiling --modes inprocess --model 20b --cuda-graphs on   # on a GPU: a real model's pace
    python -m bench.app_ceiling --modes gradio-floor   # Gradio alone, the same turn shape (bench/gradio_floor.py)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.synthetic import ANSWER_WORDS, CUDA_GRAPHS, REASONING_WORDS
from testkit.net import free_port

ROOT = Path(__file__).resolve().parent.parent
WORDS = REASONING_WORDS + ANSWER_WORDS
TOKENS = WORDS + 14
TARGETS = {16: {"delivered": 0.95, "lag_p95_ms": 250}, 64: {"delivered": 0.90, "lag_p95_ms": 1000},
           "app_cpu_ms_per_update": 2.0}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT)


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    for _ in range(1500):  # a real model (--model 20b) is built first
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited (code {proc.returncode})")
        try:
            if httpx.get(url + "healthz", timeout=2).json().get("model") == "ready":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise TimeoutError("the app did not become ready")


def start_mode(mode: str, rate: float, data: Path, emit: Path,
               model: list[str] = ()) -> tuple[list[subprocess.Popen], int, str]:
    """The app (and for openai modes the stand-in server); returns (processes, app pid, url). `model`
    (in-process only): the flags that pace the completion by a real model instead of `rate`."""
    port = free_port()
    procs = []
    if mode == "gradio-floor":  # Gradio alone, with the page's turn shape (bench/gradio_floor.py)
        app = start(["-m", "bench.gradio_floor", "--port", str(port), "--rate", str(rate), "--log", str(emit)],
                    data / "app.log")
    elif mode == "inprocess":
        app = start(["-m", "bench.synthetic", "app", "--port", str(port), "--rate", str(rate), "--log", str(emit),
                     "--data-dir", str(data), *model], data / "app.log")
    else:
        server_port = free_port()
        procs.append(start(["-m", "bench.synthetic", "server", "--port", str(server_port), "--rate", str(rate),
                            "--log", str(emit)], data / "server.log"))
        api = "chat" if mode == "openai-chat" else "completions"
        app = start(["app.py", "--engine", "openai", "--base-url", f"http://127.0.0.1:{server_port}/v1",
                     "--server-api", api, "--data-dir", str(data), "--port", str(port), "--max-active", "64",
                     "--max-waiting", "64", "--max-new-tokens", "2000"], data / "app.log")
    procs.insert(0, app)
    url = f"http://127.0.0.1:{port}/"
    wait_ready(url, app)
    return procs, app.pid, url


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def level(mode: str, procs, app_pid: int, url: str, tabs: int, index: int, rate: float, data: Path,
          emit: Path) -> dict:
    out = data / f"tabs-{index}.jsonl"
    others = [p.pid for p in procs[1:]]
    client = subprocess.Popen([sys.executable, "-m", "bench.gradio_load", url, "--tabs", str(tabs),
                               "--level", str(index), "--out", str(out), "--wait-for-go"], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if client.stdout.readline().strip() != "loaded":  # every tab has opened the page
        raise RuntimeError("the load client failed to open its tabs")
    app0, others0 = cpu_seconds(app_pid), sum(cpu_seconds(p) for p in others)
    client_cpu0 = cpu_seconds(client.pid)
    client.stdin.write("go\n")
    client.stdin.flush()
    _, status, usage = os.wait4(client.pid, 0)
    client.returncode = os.waitstatus_to_exitcode(status)
    app_cpu, other_cpu = cpu_seconds(app_pid) - app0, sum(cpu_seconds(p) for p in others) - others0
    if client.returncode:
        raise RuntimeError(f"the load client failed ({client.returncode})")
    tabs_out = [json.loads(line) for line in out.read_text().splitlines()]
    emitted = {}
    for line in emit.read_text().splitlines():
        e = json.loads(line)
        if e["tag"].startswith(f"{index}-"):
            emitted[e["tag"]] = e["t"]
    return summarize(mode, tabs, rate, tabs_out, emitted, app_cpu, other_cpu,
                     usage.ru_utime + usage.ru_stime - client_cpu0)


def summarize(mode, tabs, rate, tabs_out, emitted, app_cpu, other_cpu, client_cpu) -> dict:
    """`rate` None: a real model paced the words, and what it offered is what it emitted from the
    first Enter to its last word."""
    lags, rates, updates, words, starts, firsts = [], [], 0, 0, [], []
    start = min(t["t0"] for t in tabs_out)
    end = start
    for t in tabs_out:
        arrivals, times = t["arrivals"], emitted.get(t["tag"], [])
        shown = arrivals[-1][1] if arrivals else 0
        words += min(shown, WORDS)
        updates += t["updates"]
        if arrivals:
            end = max(end, arrivals[-1][0])
            span = max(arrivals[-1][0] - t["t0"], 1e-3)
            rates.append(t["updates"] / span)
        if times:
            starts.append(times[0] - t["t0"])  # Enter -> the engine's first word: the app starting a turn
        shown_first = next((when for when, count in arrivals if count), None)
        if shown_first:
            firsts.append(shown_first - t["t0"])  # Enter -> the first word on the page
        k = 0
        for when, count in arrivals:  # each word arrives with the first update that shows it
            while k < min(count, len(times)):
                lags.append(when - times[k])
                k += 1
    wall = max(end - start, 1e-3)
    delivered = words / WORDS * TOKENS / wall
    if rate is None:
        last = max((times[-1] for times in emitted.values() if times), default=start + 1e-3)
        offered = tabs * TOKENS / max(last - start, 1e-3)
    else:
        offered = tabs * rate
    return {
        "mode": mode, "streams": tabs, "offered_tok_s": round(offered, 1), "delivered_tok_s": round(delivered, 1),
        "delivered_vs_offered": round(delivered / offered, 3), "wall_vs_ideal": round(wall * offered / (tabs * TOKENS), 2),
        "lag_p50_ms": round(1000 * percentile(lags, 0.5), 1), "lag_p95_ms": round(1000 * percentile(lags, 0.95), 1),
        "lag_max_ms": round(1000 * max(lags), 1) if lags else None,
        "start_p50_ms": round(1000 * percentile(starts, 0.5), 1), "start_p95_ms": round(1000 * percentile(starts, 0.95), 1),
        "first_word_p50_ms": round(1000 * percentile(firsts, 0.5), 1),
        "first_word_p95_ms": round(1000 * percentile(firsts, 0.95), 1),
        "updates_per_stream_s_mean": round(statistics.mean(rates), 1) if rates else None,
        "updates_per_stream_s_max": round(max(rates), 1) if rates else None,
        "updates_per_token": round(updates / max(words / WORDS * TOKENS, 1), 3),
        "app_cpu_ms_per_update": round(1000 * app_cpu / max(updates, 1), 2),
        "app_cpu_ms_per_token": round(1000 * app_cpu / max(words / WORDS * TOKENS, 1), 3),
        "app_cpu_share_of_one_core": round(app_cpu / wall, 2),
        "clients_cpu_s": round(client_cpu, 2), "standin_server_cpu_s": round(other_cpu, 2),
        "words_shown": f"{words}/{WORDS * tabs}",
        "errors": sum(len(t["errors"]) for t in tabs_out),
        "error_samples": [e for t in tabs_out for e in t["errors"]][:3],
    }


def run_mode(mode: str, levels: list[int], rate: float | None, repeat: int = 1, model: list[str] = ()) -> list[dict]:
    """Each level `repeat` times in a row (the levels in order, then again): per level the run with the
    median delivered ratio, with every run's ratio beside it (this VM's run-to-run spread is wide)."""
    data = Path(tempfile.mkdtemp(prefix=f"ceiling-{mode}-"))
    emit = data / "emitted.jsonl"
    emit.touch()
    procs, app_pid, url = start_mode(mode, rate or 100.0, data, emit, model)
    try:
        level(mode, procs, app_pid, url, 2, 0, rate, data, emit)  # warm-up
        runs: dict[int, list[dict]] = {n: [] for n in levels}
        index = 0
        for _ in range(repeat):
            for n in levels:
                index += 1
                runs[n].append(level(mode, procs, app_pid, url, n, index, rate, data, emit))
        out = []
        for n in levels:
            ranked = sorted(runs[n], key=lambda r: r["delivered_vs_offered"])
            median = dict(ranked[len(ranked) // 2])
            if repeat > 1:
                median["delivered_vs_offered_runs"] = [r["delivered_vs_offered"] for r in runs[n]]
            out.append(median)
        return out
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def verdict(r: dict) -> dict:
    goal = TARGETS.get(r["streams"])
    checks = {"app_cpu_ms_per_update": r["app_cpu_ms_per_update"] <= TARGETS["app_cpu_ms_per_update"]}
    if goal:
        checks["delivered"] = r["delivered_vs_offered"] >= goal["delivered"]
        checks["lag_p95"] = r["lag_p95_ms"] <= goal["lag_p95_ms"]
    return checks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", nargs="+", default=["inprocess", "openai-chat", "openai-tokens"])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per level; the median run is reported")
    parser.add_argument("--model", choices=["tiny", "20b"],
                        help="in-process only: a real model paces the words instead of --rate")
    parser.add_argument("--cuda-graphs", choices=list(CUDA_GRAPHS), default="auto")
    args = parser.parse_args()
    model = ["--model", args.model, "--cuda-graphs", args.cuda_graphs] if args.model else []
    if model and args.modes != ["inprocess"]:
        parser.error("--model paces the in-process engine: use it with --modes inprocess")
    rate = None if model else args.rate
    runs = []
    for mode in args.modes:
        for r in run_mode(mode, args.levels, rate, args.repeat, model):
            r["meets_targets"] = verdict(r)
            runs.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    print(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores", "rate_per_stream": rate,
                      "model": args.model and f"{args.model}, CUDA graphs {args.cuda_graphs}",
                      "tokens_per_answer": TOKENS, "targets": {str(k): v for k, v in TARGETS.items()},
                      "runs": runs}, indent=2))


if __name__ == "__main__":
    main()

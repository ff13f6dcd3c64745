"""What a user sees in Chromium: time to the first visible reasoning, and words per second on the page,
beside the worker's own figures for the same answers, at 1 and 16 chats.

The app runs in this process around bench/synthetic.py's engine (300 tokens per answer at --rate
tokens/s per stream, no model); Chromium (Debian's, driven by Playwright) opens one page per chat. A
MutationObserver in each page records when the count of the answer's words in the page grows (its
own clock, performance.timeOrigin + now: the same wall clock as this process). All pages press Send
together. Per level, JSON: time from the click to the first visible reasoning word (p50/p95) against
the worker's time to first token; words per second on the page (first to last word) against the
engine's own words per second for the same answers (from its emission log), their ratio, and the
worker's tokens/s.

    python -m bench.browser_stream [--levels 1 16] [--rate 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT
from bench.synthetic import ANSWER_WORD, WORD, EmissionLog, SyntheticEngine
from testkit.net import free_port
from testkit.page import launch, ready

OBSERVE = """(() => {
  window.__seen = [];
  let reasoning = 0, answer = 0;
  const count = (text, word) => text.split(word).length - 1;
  new MutationObserver(() => {
    const t = performance.timeOrigin + performance.now();
    const text = (document.querySelector('#live')?.textContent || '') +
                 (document.querySelector('#chat')?.textContent || '');
    // The reasoning folds away when the answer starts: keep the most of each ever shown.
    reasoning = Math.max(reasoning, count(text, 'WORD'));
    answer = Math.max(answer, count(text, 'ANSWER'));
    const seen = window.__seen, n = reasoning + answer;
    if (!seen.length || seen[seen.length - 1][1] !== n) seen.push([t, n]);
  }).observe(document, {subtree: true, childList: true, characterData: true});
})();""".replace("WORD", WORD.strip()).replace("ANSWER", ANSWER_WORD.strip())


def start_app(rate: float):
    import app as app_module
    from backend.harmony.vocab import load_encoding
    from core.config import Config

    data = Path(tempfile.mkdtemp())
    encoding = load_encoding(ROOT / "data" / "vocab")
    config = Config(data_dir=str(data), port=free_port(), max_active=64, max_waiting=64, max_new_tokens=2000)
    engine = SyntheticEngine(encoding, rate, EmissionLog(data / "emitted.jsonl"))
    parts = app_module.create(config, build_engine=lambda progress: engine)
    app_module.launch(parts, prevent_thread_lock=True, quiet=True)
    while parts.host.status().state != "ready":
        time.sleep(0.1)
    return parts, f"http://127.0.0.1:{config.port}/", data / "emitted.jsonl"


def level(browser, parts, url: str, n: int, emitted: Path) -> dict:
    # One browser context per chat, as separate users are: a browser opens at most 6 connections to a
    # host, and each open page keeps one streaming.
    contexts = [browser.new_context() for _ in range(n)]
    for context in contexts:
        context.add_init_script(OBSERVE)
    pages = [context.new_page() for context in contexts]
    for i, page in enumerate(pages):
        page.goto(url)
        ready(page)
        page.locator("#message textarea").fill(f"Tell me about stripes [{n}-{i}]")
    cpu0 = _cpu()
    clicks = []
    for page in pages:  # as close to together as one driver can
        clicks.append(time.time())
        page.locator("#send").click(no_wait_after=True)
    for page in pages:
        page.wait_for_function("() => document.querySelector('#chat').textContent.includes('tokens/s')",
                               timeout=120_000)
    browser_cpu, server_cpu = (b - a for a, b in zip(cpu0, _cpu()))
    wall = time.time() - clicks[0]
    emissions = {}
    for line in emitted.read_text().splitlines():
        e = json.loads(line)
        emissions[e["tag"]] = e["t"]
    firsts, rates, worker_ttft, worker_rates, engine_rates = [], [], [], [], []
    for i, (page, clicked) in enumerate(zip(pages, clicks)):
        times = emissions.get(f"{n}-{i}") or []
        if len(times) > 1:
            engine_rates.append((len(times) - 1) / (times[-1] - times[0]))
        seen = page.evaluate("window.__seen")
        shown = [(t / 1000, c) for t, c in seen if c > 0]
        firsts.append(shown[0][0] - clicked)
        if len(shown) > 1 and shown[-1][0] > shown[0][0]:
            rates.append((shown[-1][1] - shown[0][1]) / (shown[-1][0] - shown[0][0]))
        cid = page.evaluate("new URL(location.href).searchParams.get('c')")
        answer = parts.service.repo.get("local", cid).messages[-1]
        worker_ttft.append(answer.ttft)
        worker_rates.append(answer.tokens_per_s)
    for context in contexts:
        context.close()
    med = statistics.median
    return {"chats": n,
            "page_first_reasoning_p50_ms": round(1000 * med(firsts), 1),
            "page_first_reasoning_p95_ms": round(1000 * sorted(firsts)[min(n - 1, int(0.95 * n))], 1),
            "worker_ttft_p50_ms": round(1000 * med(worker_ttft), 1),
            "page_words_per_s_p50": round(med(rates), 1) if rates else None,
            "engine_words_per_s_p50": round(med(engine_rates), 1) if engine_rates else None,
            "page_vs_engine_words_per_s": round(med(rates) / med(engine_rates), 3) if rates and engine_rates else None,
            "worker_tokens_per_s_p50": round(med(worker_rates), 1),
            # Every tab renders on this machine's 2 cores, beside the server: this says who used them.
            "browser_cpu_cores": round(browser_cpu / wall, 2), "server_cpu_cores": round(server_cpu / wall, 2)}


def _cpu() -> tuple[float, float]:
    """CPU seconds so far of all Chromium processes, and of this process (the server)."""
    import psutil

    browser = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if "chrom" in (proc.info["name"] or "") and proc.info["cpu_times"]:
            browser += proc.info["cpu_times"].user + proc.info["cpu_times"].system
    me = psutil.Process().cpu_times()
    return browser, me.user + me.system


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    parts, url, emitted = start_app(args.rate)
    report = []
    with sync_playwright() as p:
        browser = launch(p)
        level(browser, parts, url, 1, emitted)  # warm-up
        for n in args.levels:
            report.append(level(browser, parts, url, n, emitted))
        browser.close()
    parts.demo.close()
    print(json.dumps({"rate_per_stream": args.rate, "levels": report}, indent=2))


if __name__ == "__main__":
    main()

"""--engine openai against a real server on this machine: `transformers serve` on the demo model.

The demo model folder carries a harmony chat template and a response template, so transformers
serve streams reasoning (delta.reasoning_content) and answer (delta.content) apart, like vLLM.
"""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from testkit import page
from testkit.net import free_port

gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("openai")  # transformers serve needs it
SERVE_START_S = 180


@pytest.fixture(scope="module")
def served(tmp_path_factory, codec):
    from backend.demo.model import ensure_built

    folder = ensure_built(tmp_path_factory.mktemp("demo") / "demo-model", codec, lambda stage, fraction: None)
    port = free_port()
    log = open(tmp_path_factory.mktemp("serve") / "serve.log", "w")
    cli = Path(sys.executable).parent / "transformers"  # the CLI beside this interpreter, else on PATH
    cli = cli if cli.exists() else Path(shutil.which("transformers") or "transformers")
    proc = subprocess.Popen([str(cli), "serve", str(folder), "--port", str(port), "--device", "cpu"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + SERVE_START_S
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            break
        except OSError:
            assert proc.poll() is None, "transformers serve exited; see its log"
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("transformers serve did not start")
    yield url + "/v1"
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture
def app(served, tmp_path):
    import app as app_module
    from core.config import parse_config

    config = parse_config(["--engine", "openai", "--base-url", served, "--data-dir", str(tmp_path),
                           "--port", str(free_port()), "--max-new-tokens", "300"], {})
    parts = app_module.create(config)  # the real path: make_engine -> OpenAIEngine.connect (probe)
    deadline = time.time() + 60
    while parts.host.status().state == "loading" and time.time() < deadline:
        time.sleep(0.1)
    assert parts.host.status().state == "ready", parts.host.status().error
    app_module.launch(parts, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{config.port}/", parts
    parts.demo.close()


def test_probe_chooses_chat_mode(app):
    description = app[1].host.status().description
    assert "chat API" in description.engine and description.model.endswith("demo-model")


def test_chat_shows_reasoning_and_answer_apart(app):
    url, parts = app
    c = gradio_client.Client(url, verbose=False)
    chat, _, cid = c.submit("Convert 3 km to m", "", "high", "", 0.0, 300, api_name="/send").result()
    fold, thought, answer, stats = chat[1], chat[2], chat[3], chat[4]  # one answer: its fold, step, text, stats
    assert fold["metadata"]["title"].startswith("Thought for") and "km" in str(thought["content"])
    assert "3000" in str(answer["content"]) and not (answer.get("metadata") or {}).get("title")
    assert "high effort" in str(stats["content"]) and "tokens/s" in str(stats["content"])
    stored = parts.service.repo.get("local", cid).messages[1]
    assert stored.status == "complete" and "3000" in stored.content and stored.reasoning
    assert "3000" not in stored.reasoning.split("=")[0]  # the answer is not inside the reasoning


def test_stop_keeps_the_partial_answer_and_the_server_serves_on(app):
    url, parts = app
    c = gradio_client.Client(url, verbose=False)
    job = c.submit("Sort these numbers: 9 4 7 1 8 2", "", "high", "", 1.0, 300, api_name="/send")
    cid, deadline = None, time.time() + 60
    while time.time() < deadline and not cid:
        outs = job.outputs()
        if outs and isinstance(outs[-1][2], str) and outs[-1][2] and outs[-1][1]:
            cid = outs[-1][2]
        time.sleep(0.02)
    c.predict(cid, api_name="/stop")
    job.result()
    stopped = parts.service.repo.get("local", cid).messages[1]
    assert stopped.status == "stopped"
    again = c.submit("Convert 2 km to m", "", "low", "", 0.0, 300, api_name="/send").result()
    assert "2000" in str(again[0][2]["content"])  # the server dropped the stopped request and goes on


def test_a_client_that_disconnects_does_not_cancel_the_servers_answer(app):
    """Answers belong to the app's server with --engine openai too: the inference server's stream
    runs to its end after the page went away."""
    url, parts = app
    c = gradio_client.Client(url, verbose=False)
    job = c.submit("Convert 4 km to m", "", "high", "", 0.0, 300, api_name="/send")
    cid, deadline = None, time.time() + 60
    while time.time() < deadline and not cid:
        cid = next((o[2] for o in job.outputs() if isinstance(o[2], str) and o[2]), None)
        time.sleep(0.02)
    job.cancel()
    while parts.service.repo.get("local", cid).messages[1].status == "streaming" and time.time() < deadline + 60:
        time.sleep(0.1)
    answer = parts.service.repo.get("local", cid).messages[1]
    assert answer.status == "complete" and "4000" in answer.content


def test_in_the_browser(app):
    pytest.importorskip("playwright.sync_api")
    if not Path(page.CHROMIUM).exists():
        pytest.skip(f"no Chromium at {page.CHROMIUM}")
    url, _ = app
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = page.launch(p)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        pg.set_default_timeout(page.TIMEOUT_MS)
        pg.goto(url)
        page.ready(pg)
        assert "OpenAI-compatible server (chat API)" in pg.locator("#status-banner").inner_text()
        # greedy, so the tiny demo model's digits are its best guess
        page.set_temperature(pg, "0")
        page.send(pg, "Convert 5 km to m")
        page.wait_answers(pg, 1)
        page.shot(pg, "15-openai-engine")
        assert any(t.startswith("Thought for") for t in page.thought_titles(pg))
        assert "5000" in " ".join(pg.locator(f"#chat {page.BOT}").all_inner_texts())
        browser.close()

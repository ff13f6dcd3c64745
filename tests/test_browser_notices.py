"""A finished answer is noticed, in Chromium: an answer that ends in a conversation not on screen marks it in
the sidebar, the tab title counts it and a notification names it; so does one that ends on screen while the
tab is in the background. The browser's Notification is replaced by a recorder (a headless browser shows
none): the page's own script decides when to call it, which is what is checked."""

from pathlib import Path

import pytest

from testkit.net import free_port
from testkit.page import CHROMIUM, TIMEOUT_MS, open_page, ready, send

pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

LONG = ("<|channel|>analysis<|message|>" + "Thinking it through step by step. " * 120 + "<|end|>"
        "<|start|>assistant<|channel|>final<|message|>" + "The answer is forty-two. " * 20 + "<|return|>")
RECORDER = """window.__notes = [];
window.Notification = class { constructor(title, options) { window.__notes.push(options.body); }
  static get permission() { return 'granted'; } static requestPermission() { return Promise.resolve('granted'); } };"""
HIDE = """h => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => h});
  document.dispatchEvent(new Event('visibilitychange')); }"""
WAIT_MS = 400_000  # a whole long answer on a loaded machine: a wait for a condition, never a sleep


@pytest.fixture
def app(tmp_path, launched):
    from core.config import Config

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=4000)
    launched(config, text=LONG)
    return f"http://127.0.0.1:{config.port}/"


@pytest.mark.timeout(900)
def test_finished_answers_are_counted_in_the_title_and_notified(browser, app):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(RECORDER)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(app)
    ready(pg)
    assert pg.title() == "gpt-oss chat"
    send(pg, "Tell me a long story")
    pg.wait_for_function("() => (document.querySelector('#live') || {innerText: ''}).innerText.includes('Thinking')")
    pg.locator("#new-chat").click()  # the answer goes on, off screen
    pg.wait_for_function("() => document.title === '(1) gpt-oss chat'", timeout=WAIT_MS)
    pg.wait_for_function("() => window.__notes.includes('Tell me a long story')")
    pg.locator("#conversations").get_by_text("Tell me a long story").click()  # seen: the count goes
    pg.wait_for_function("() => document.title === 'gpt-oss chat'")
    pg.evaluate(HIDE, True)  # the tab in the background while the next answer is written on screen
    send(pg, "And another one")
    pg.wait_for_function("() => document.title === '(1) gpt-oss chat'", timeout=WAIT_MS)
    assert pg.evaluate("() => window.__notes") == ["Tell me a long story", "Tell me a long story"]
    pg.evaluate(HIDE, False)  # back to the tab: nothing left unseen
    pg.wait_for_function("() => document.title === 'gpt-oss chat'")
    context.close()


def test_a_tab_open_through_a_model_restart_shows_it_once_a_send_fails(browser, tmp_path, forced_engine):
    """The banner's timer runs only while the model loads. A tab opened before the model's process stopped
    hears "restarting" from its failed send; the banner then says so too, and follows the restart to its
    end (the reload of the model is held here until the page has shown that)."""
    import threading

    from core.config import Config
    from tests.support.apps import running_app

    gate, engines, build_forced = threading.Event(), [], forced_engine()

    def build(progress):
        if engines:  # the restart
            gate.wait(600)
        engine = build_forced(progress)
        engine.died = threading.Event()  # as an engine in a process of its own has: the host watches it
        engines.append(engine)
        return engine

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400)
    try:
        with running_app(config, build) as parts:
            pg = open_page(browser, f"http://127.0.0.1:{config.port}/")
            assert "restarting" not in pg.locator("#status-banner").inner_text()
            engines[0].died.set()  # its process stopped
            while parts.host.status().state != "loading":
                pg.wait_for_timeout(50)
            send(pg, "Are you there?")
            pg.locator("#status-banner").get_by_text("restarting", exact=False).wait_for()
            pg.locator("#message textarea[disabled]").wait_for()
            gate.set()
            ready(pg)  # the timer saw the model ready: the message box opens again
            assert "restarting" not in pg.locator("#status-banner").inner_text()
            pg.context.close()
    finally:
        gate.set()

"""Driving the page in Chromium: the browser, and Gradio's DOM named once.

The selectors below lean on Gradio 6's markup (a thought message is `.thought-group` with a
`.title`; chat bubbles carry `data-testid="bot"` / `"user"`; a Textbox is a textarea or an input).
A Gradio upgrade that changes them changes this file, not every test.
"""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
TIMEOUT_MS = 60_000
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"

THOUGHT = ".thought-group"  # a Gradio thought message (an answer's fold, its steps)
THOUGHT_TITLE = ".thought-group .title"
STEP_TITLE = ".children .thought-group > .title"  # a step's, inside its answer's fold
STATS = "[data-testid=bot] .message-content p > sub"  # an answer's stats line (ui/render.py)
# An answer's steps fold under one thought (ui/render.py); Gradio renders a fold's children only once opened.
OPEN_FOLDS = """where => document.querySelectorAll(where + ' .thought-group > .title:not(.expanded)')
  .forEach(t => { if (!t.closest('.children')) t.click(); })"""
BOT = '[data-testid="bot"]'
USER = '[data-testid="user"]'


def field(elem_id: str) -> str:
    """A Gradio Textbox's editable element (a textarea or, for one line, an input)."""
    return f"#{elem_id} textarea, #{elem_id} input"


def launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


def ready(pg) -> None:
    pg.locator("#message textarea:not([disabled])").wait_for()


def shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def send(pg, text: str) -> None:
    pg.locator("#message textarea").fill(text)
    pg.locator("#send").click()


def open_folds(pg, where: str = "#chat") -> None:
    """Open every answer's fold in `where`, so that its steps show."""
    pg.evaluate(OPEN_FOLDS, where)


def thought_titles(pg, where: str = "#chat") -> list[str]:
    """Every fold's and step's title in `where` (the folds opened first)."""
    open_folds(pg, where)
    return pg.locator(f"{where} {THOUGHT_TITLE}").all_inner_texts()


def step_titles(pg, where: str = "#chat") -> list[str]:
    """The steps' titles in `where` (thoughts, tool runs), without their folds' (opened first)."""
    open_folds(pg, where)
    return pg.locator(f"{where} {STEP_TITLE}").all_inner_texts()


def stats_lines(pg, where: str = "#chat") -> list[str]:
    return [t for t in pg.locator(f"{where} {STATS}").all_inner_texts() if "effort" in t]


def url_conversation(pg) -> str | None:
    """The conversation the page's address names (?c=), or None."""
    return pg.evaluate(URL_CONVERSATION)


URL_CONVERSATION = "() => new URL(location.href).searchParams.get('c')"


def wait_answers(pg, n: int, timeout_ms: float | None = None) -> None:
    """Until `n` answers have ended (their stats line shows); `timeout_ms`: the ceiling when the wait
    covers a whole long answer (the default is for short ones)."""
    pg.wait_for_function(
        f"n => [...document.querySelectorAll('#chat {STATS}')]"
        ".filter(e => e.innerText.includes('effort')).length >= n", arg=n, timeout=timeout_ms)


def open_page(browser, url: str, height: int = 900):
    """A new tab of its own (its own cookies) on the app, ready to chat."""
    context = browser.new_context(viewport={"width": 1280, "height": height})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(url)
    ready(pg)
    return pg


def set_temperature(pg, value: str) -> None:
    """Type a temperature into the Settings slider's number box until the slider shows it (a value typed
    while the accordion is still opening can be lost: type it again)."""
    if not pg.locator("#temperature input[type=number]").is_visible():
        pg.locator("#settings .label-wrap").first.click()
    box, slider = pg.locator("#temperature input[type=number]"), pg.locator("#temperature input[type=range]")
    for _ in range(10):
        box.fill(value)
        box.press("Enter")
        try:
            pg.wait_for_function("([el, v]) => el.value === v", arg=[slider.element_handle(), value], timeout=2000)
            return
        except Exception:
            continue
    raise AssertionError(f"the temperature slider never showed {value}")

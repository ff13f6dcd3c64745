"""One answer looks like one answer (#38), in Chromium: an answer that thought, ran python and thought again
is one bubble — its steps under one fold ("Thought for 1.0 s · ran python once") that opens to them in
order, its text, the stats as a quiet line — with one copy button that copies the answer's text alone.
Screenshots at 1400 px and at phone width (390 px) go to artifacts/browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.net import free_port
from testkit.page import (
    CHROMIUM,
    STEP_TITLE,
    THOUGHT_TITLE,
    TIMEOUT_MS,
    ready,
    send,
    shot,
    stats_lines,
    step_titles,
    wait_answers,
)

pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

CALL = ("<|channel|>analysis<|message|>I should add them with python.<|end|>"
        "<|start|>assistant to=python<|channel|>analysis code<|message|>print(17 + 25)<|call|>")
ANSWER = ("<|channel|>analysis<|message|>python printed 42.<|end|>"
          "<|start|>assistant<|channel|>final<|message|>17 + 25 = **42**.<|return|>")
BOT_ROWS = "#chat .message-row.bot-row"
BOT_COPY = '#chat .message-buttons-left button[title="Copy message"]'


@pytest.fixture
def app(tmp_path, launched):
    from core.config import Config

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, tools="python")
    launched(config, text=CALL, then=(ANSWER,))
    return f"http://127.0.0.1:{config.port}/"


def test_an_answer_is_one_bubble_with_one_fold_and_one_copy_button(browser, app):
    context = browser.new_context(viewport={"width": 1400, "height": 900},
                                  permissions=["clipboard-read", "clipboard-write"])
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(app)
    ready(pg)
    send(pg, "What is 17 + 25?")
    wait_answers(pg, 1)
    assert pg.locator(BOT_ROWS).count() == 1 and pg.locator(BOT_COPY).count() == 1
    fold = pg.locator(f"#chat {THOUGHT_TITLE}")
    assert fold.count() == 1  # closed: one line for all the steps
    assert fold.inner_text().startswith("Thought for") and fold.inner_text().endswith("· ran python once")
    assert "medium effort" in stats_lines(pg)[0] and "1 tool call in" in stats_lines(pg)[0]
    assert "(" not in fold.inner_text()  # no duration said twice ("… 0.8 s (0.8s)")
    shot(pg, "answer-1400-closed")
    titles = step_titles(pg)  # opens the fold
    assert titles[0].startswith("Thought for") and titles[1].startswith("Ran python ·") and len(titles) == 3
    pg.locator(f"#chat {STEP_TITLE}", has_text="Ran python").click()
    pg.wait_for_function("() => document.querySelector('#chat').innerText.includes('print(17 + 25)')")
    assert pg.locator(BOT_ROWS).count() == 1  # still one bubble, opened
    shot(pg, "answer-1400-open")
    pg.locator(BOT_COPY).click()
    assert pg.evaluate("() => navigator.clipboard.readText()") == "17 + 25 = 42."  # the answer, not the steps
    url = pg.url
    context.close()
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = phone.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(url)  # the same conversation on a phone
    ready(pg)
    wait_answers(pg, 1)
    pg.wait_for_function("() => !document.querySelector('.sidebar.open')")  # closed there: the chat has the width
    bubble = pg.locator(BOT_ROWS).bounding_box()
    assert bubble["x"] >= 0 and bubble["x"] + bubble["width"] <= 390 + 1  # the bubble fits a phone's width
    assert pg.locator(BOT_COPY).count() == 1
    shot(pg, "answer-390")
    phone.close()

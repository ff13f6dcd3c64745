"""Compare efforts in Chromium: three columns stream together under a chart, a reload re-attaches to all
three, Stop stops all three, "Continue with this one" keeps that branch, the reasoning-display policy
applies per column, and on the demo model the reasoning grows from low to medium to high.

The synthetic engine (bench/synthetic.py: one harmony completion at a fixed rate per stream, many streams
at once) makes the timing-dependent steps certain: its answers take seconds, so a reload lands in the
middle of them. The demo model answers the question for real."""

from pathlib import Path

import pytest

from testkit.page import (
    BOT,
    CHROMIUM,
    STATS,
    open_page,
    ready,
    send,
    set_temperature,
    shot,
    stats_lines,
    url_conversation,
    wait_answers,
)
from tests.support.apps import synthetic_app
from tests.support.held import HeldSettles

pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

EFFORTS = ("low", "medium", "high")
COLUMN_BOTS = "e => document.querySelectorAll('#compare-' + e + ' [data-testid=bot]').length"
ENDED = f"() => ['low', 'medium', 'high'].every(e => document.querySelector('#compare-' + e + ' {STATS}'))"


@pytest.fixture
def slow_app(tmp_path, codec):
    config, app = synthetic_app(tmp_path, codec.encoding, rate=12.0)  # 300 tokens: about 25 s an answer
    with app as parts:
        yield f"http://127.0.0.1:{config.port}/", parts


def column_text(pg, effort: str) -> str:
    return pg.locator(f"#compare-{effort}").inner_text()


def compare(pg, text: str) -> None:
    pg.locator("#message textarea").fill(text)
    pg.locator("#compare-efforts").click()


def wait_streaming(pg) -> None:
    """All three columns show their answer being written, and the chart says it is still growing."""
    for effort in EFFORTS:
        pg.wait_for_function(f"e => ({COLUMN_BOTS})(e) > 0", arg=effort)
    pg.wait_for_function("() => (document.querySelector('#compare-chart svg.effort-chart') || {textContent: ''})"
                         ".textContent.includes('…')")


def test_three_columns_stream_reattach_after_a_reload_and_stop_together(browser, slow_app):
    url, parts = slow_app
    pg = open_page(browser, url, height=1300)
    compare(pg, "What is 17 + 25?")
    wait_streaming(pg)
    assert pg.locator("#chat [data-testid=user]").inner_text().strip() == "What is 17 + 25?"
    assert pg.locator(f"#chat {BOT}").count() == 0  # the answers are in the columns, not the chat
    shot(pg, "compare-01-streaming")
    cid = url_conversation(pg)
    before = {e: len(column_text(pg, e)) for e in EFFORTS}
    pg.reload()  # in the middle of all three
    ready(pg)
    wait_streaming(pg)
    for effort in EFFORTS:  # re-attached: each column goes on growing
        pg.wait_for_function("([e, n]) => document.querySelector('#compare-' + e).innerText.length > n",
                             arg=[effort, before[effort]])
    assert len(parts.service.turns.of(cid)) == 3
    pg.locator("#stop").click()
    pg.wait_for_function(ENDED)
    lines = {e: stats_lines(pg, f"#compare-{e}") for e in EFFORTS}
    assert all(len(lines[e]) == 1 and lines[e][0].startswith(f"{e} effort") and "stopped by the user" in lines[e][0]
               for e in EFFORTS), lines
    shot(pg, "compare-02-stopped")
    stored = parts.service.repo.get("local", cid)
    assert [m.status for m in stored.compared] == ["stopped"] * 3
    pg.locator("#keep-medium").click()  # "Continue with this one"
    pg.wait_for_function("() => !document.querySelector('#compare-chart svg.effort-chart')")
    pg.wait_for_function("() => document.querySelector('#chat').innerText.includes('2 / 3')")
    assert "medium effort" in stats_lines(pg)[0]
    assert not pg.locator("#compare").is_visible()


def test_the_reasoning_display_policy_applies_to_every_column(browser, tmp_path, codec):
    config, app = synthetic_app(tmp_path, codec.encoding, rate=400.0, reasoning_display="hidden")
    with app:
        pg = open_page(browser, f"http://127.0.0.1:{config.port}/", height=1300)
        compare(pg, "What is 17 + 25?")
        pg.wait_for_function(ENDED)
        for effort in EFFORTS:
            text = column_text(pg, effort)
            assert "llama" in text and "zebra" not in text, text  # the answer, never the hidden reasoning
        pg.reload()  # the comparison waits to be decided: shown again, as stored
        ready(pg)
        pg.wait_for_function(ENDED)
        assert all("zebra" not in column_text(pg, e) for e in EFFORTS)


def test_a_message_clicked_in_the_chat_is_the_one_compared(browser, tmp_path, codec):
    config, app = synthetic_app(tmp_path, codec.encoding, rate=400.0)
    with app:
        pg = open_page(browser, f"http://127.0.0.1:{config.port}/", height=1300)
        for n, text in enumerate(("The first question", "The second question"), start=1):
            send(pg, text)
            wait_answers(pg, n)
        pg.locator("#chat [data-testid=user]").first.click()
        button = pg.locator("#compare-efforts")
        pg.wait_for_function("() => document.querySelector('#compare-efforts').innerText.includes('first question')")
        shot(pg, "compare-04-picked")
        button.click()
        pg.wait_for_function(ENDED)
        users = pg.locator("#chat [data-testid=user]").all_inner_texts()
        assert [u.strip() for u in users] == ["The first question"]  # the branch shown ends at the one picked
        assert button.inner_text().strip() == "Compare efforts"  # the pick is used up
        assert all(stats_lines(pg, f"#compare-{e}")[0].count("answer after") == 1 for e in EFFORTS)
        pg.locator("#chat [data-testid=user]").first.click()  # picked again, then a turn lets it go
        pg.wait_for_function("() => document.querySelector('#compare-efforts').innerText.includes('first')")
        pg.locator("#keep-high").click()
        pg.wait_for_function("() => document.querySelector('#chat').innerText.includes('4 / 4')")  # its own too
        assert "The second question" not in pg.locator("#chat").inner_text()
        assert button.inner_text().strip() == "Compare efforts"  # keeping one let the pick go too
        pg.locator("#chat [data-testid=user]").first.click()
        pg.wait_for_function("() => document.querySelector('#compare-efforts').innerText.includes('first')")
        send(pg, "A third question")
        pg.wait_for_function("() => document.querySelector('#compare-efforts').innerText.trim() === 'Compare efforts'")


def test_on_the_demo_model_reasoning_grows_with_effort(browser, demo_app):
    pg = open_page(browser, demo_app, height=1300)
    set_temperature(pg, "0")  # greedy: the model's own lengths, not a sampling draw
    compare(pg, "What is 17 + 25?")
    pg.wait_for_function(ENDED, timeout=180_000)
    shot(pg, "compare-03-demo")
    tokens = {}
    for effort in EFFORTS:
        (line,) = stats_lines(pg, f"#compare-{effort}")
        tokens[effort] = int(line.split(" reasoning + ")[0].split(" · ")[-1])
        assert "42" in column_text(pg, effort)
    assert tokens["low"] < tokens["medium"] < tokens["high"], tokens
    bars = pg.evaluate("() => [...document.querySelectorAll('#compare-chart rect[data-metric=reasoning_tokens]')]"
                       ".map(r => [r.dataset.effort, Number(r.dataset.value)])")
    assert dict(bars) == tokens  # the chart draws the same numbers
    pg.locator("#keep-medium").click()
    pg.wait_for_function("() => document.querySelector('#chat').innerText.includes('2 / 3')")
    assert "42" in pg.locator(f"#chat {BOT}").first.inner_text() or "42" in pg.locator("#chat").inner_text()


@pytest.fixture
def quick_app(tmp_path, codec):
    config, app = synthetic_app(tmp_path, codec.encoding, rate=400.0)
    with app as parts:
        yield f"http://127.0.0.1:{config.port}/", parts


def test_new_chat_while_a_stored_comparisons_settle_is_on_its_way_shows_none(browser, quick_app):
    """A comparison waiting to be decided shows (from `settle`) when its conversation is opened; a settle
    asked before New chat and answered after it (held here at the network) must not show it on the new
    chat: the page left that conversation."""
    url, parts = quick_app
    pg = open_page(browser, url, height=1300)
    compare(pg, "What is 17 + 25?")
    pg.wait_for_function(ENDED)
    settles = HeldSettles(pg, parts)
    pg.reload()
    pg.wait_for_function("() => (document.querySelector('#chat') || {innerText: ''}).innerText.includes('17 + 25')")
    settles.wait_asked(2)
    pg.locator("#new-chat").click()
    pg.wait_for_function("() => !document.querySelector('#chat').innerText.includes('17 + 25')")
    settles.release()
    assert all(pg.evaluate(COLUMN_BOTS, e) == 0 for e in EFFORTS) and url_conversation(pg) is None
    pg.locator("#conversations").get_by_text("What is 17 + 25?").click()  # back: the comparison still waits
    pg.wait_for_function(ENDED)
    pg.context.close()

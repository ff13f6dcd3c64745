"""Branches in Chromium: regenerate keeps every answer ("‹ 3 / 3 ›"), the arrows move between them with
their reasoning and stats intact, a follow-up goes on from the answer shown, an edit keeps the branch it
replaces, and a reload opens the branch last shown."""

from pathlib import Path

import pytest

from testkit.net import free_port
from testkit.page import (
    BOT,
    CHROMIUM,
    THOUGHT_TITLE,
    field,
    open_folds,
    open_page,
    ready,
    send,
    shot,
    stats_lines,
    wait_answers,
)

pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def answer(n: int) -> str:
    return (f"<|channel|>analysis<|message|>Reasoning number {n}. " + "Let me think. " * 10 + "<|end|>"
            f"<|start|>assistant<|channel|>final<|message|>Answer number {n}.<|return|>")


@pytest.fixture
def app(tmp_path, launched):
    from core.config import Config

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400)
    parts = launched(config, text=answer(1), then=tuple(answer(n) for n in range(2, 7)))
    return f"http://127.0.0.1:{config.port}/", parts.service


def chat_text(pg) -> str:
    return pg.locator("#chat").inner_text()


def wait_text(pg, text: str, present: bool = True) -> None:
    pg.wait_for_function("([t, p]) => (document.querySelector('#chat') || {innerText: ''}).innerText.includes(t) === p",
                         arg=[text, present])


def navs(pg) -> list[str]:
    """The "‹ i / n ›" lines shown, top down."""
    return [t for t in pg.locator(f"#chat {BOT}").all_inner_texts() if t.startswith("‹") and " / " in t]


def arrow(pg, which: str, nth: int = -1):
    """Click ‹ or › of the nth "‹ i / n ›" line."""
    lines = pg.locator(f"#chat {BOT}").filter(has=pg.locator('a[href*="#branch-"]'))
    lines.nth(nth).get_by_role("link", name=which, exact=True).click()


def test_regenerate_twice_then_move_back_and_follow_up_from_the_first(browser, app):
    url, service = app
    pg = open_page(browser, url)
    send(pg, "What is 17 + 25?")
    wait_answers(pg, 1)
    pg.locator("#effort").get_by_text("low", exact=True).click()
    for n in (2, 3):
        pg.locator("#regenerate").click()
        wait_text(pg, f"Answer number {n}.")
        wait_answers(pg, 1)
    assert navs(pg) == [navs(pg)[0]] and "3 / 3" in navs(pg)[0]
    assert "Answer number 1." not in chat_text(pg)
    shot(pg, "branches-01-three-answers")
    arrow(pg, "‹")
    wait_text(pg, "Answer number 2.")
    arrow(pg, "‹")
    wait_text(pg, "Answer number 1.")
    assert "1 / 3" in navs(pg)[0]
    open_folds(pg)
    pg.locator(f"#chat .children {THOUGHT_TITLE}").first.click()  # its reasoning, kept whole
    wait_text(pg, "Reasoning number 1.")
    assert "medium effort" in stats_lines(pg)[0]  # the first answer's own stats (the others were low)
    shot(pg, "branches-02-back-to-the-first")
    send(pg, "And 1 more?")
    wait_text(pg, "Answer number 4.")
    wait_answers(pg, 2)
    text = chat_text(pg)
    assert text.index("Answer number 1.") < text.index("And 1 more?") < text.index("Answer number 4.")
    cid = pg.evaluate("() => new URL(location.href).searchParams.get('c')")
    path = service.repo.get("local", cid).messages
    assert [m.content for m in path] == ["What is 17 + 25?", "Answer number 1.", "And 1 more?", "Answer number 4."]
    pg.reload()  # the branch last shown comes back
    ready(pg)
    wait_text(pg, "Answer number 4.")
    assert "1 / 3" in navs(pg)[0]
    arrow(pg, "›")  # to the second answer: the follow-up was on the first's branch only
    wait_text(pg, "Answer number 2.")
    assert "And 1 more?" not in chat_text(pg)
    pg.locator(field("search-query")).first.fill("more")  # search covers every branch; a match opens its own
    pg.locator("#search-results").get_by_text("more", exact=False).first.click()
    wait_text(pg, "Answer number 4.")
    assert "1 / 3" in navs(pg)[0]


def test_an_edit_keeps_the_branch_it_replaces(browser, app):
    url, service = app
    pg = open_page(browser, url)
    send(pg, "What is 17 + 25?")
    wait_answers(pg, 1)
    send(pg, "And 38 + 46?")
    wait_answers(pg, 2)
    first = pg.locator("#chat [data-testid='user']").first
    first.hover()
    pg.locator("#chat button[aria-label='Edit']").first.click()
    box = pg.locator("#chat textarea").first
    box.fill("What is 17 + 26?")
    pg.locator("#chat").get_by_role("button", name="Submit").click()
    wait_text(pg, "Answer number 3.")
    wait_answers(pg, 1)
    wait_text(pg, "And 38 + 46?", present=False)
    assert "1 / 1" not in " ".join(navs(pg)) and "2 / 2" in navs(pg)[0]
    shot(pg, "branches-03-edited")
    arrow(pg, "‹", nth=0)
    wait_text(pg, "And 38 + 46?")
    assert "What is 17 + 25?" in chat_text(pg) and "Answer number 2." in chat_text(pg)
    cid = pg.evaluate("() => new URL(location.href).searchParams.get('c')")
    assert len(service.repo.tree("local", cid).messages) == 6  # nothing was deleted

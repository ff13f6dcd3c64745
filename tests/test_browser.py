"""The page in a real browser: Debian's Chromium driven by Playwright.

Screenshots of each step go to artifacts/browser/ (git-ignored).
"""

from pathlib import Path

import pytest

from testkit.net import free_port
from testkit.page import (
    BOT,
    CHROMIUM,
    THOUGHT,
    TIMEOUT_MS,
    USER,
    field,
    open_page,
    ready,
    send,
    shot,
    stats_lines,
    thought_titles,
    url_conversation,
    wait_answers,
)

pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.goto(app_url[0])
    ready(pg)
    yield pg
    context.close()


def test_send_streams_reasoning_then_answer(page):
    send(page, "Hello there")
    page.locator(f"#live {THOUGHT}").first.wait_for()
    page.wait_for_function("() => (document.querySelector('#live') || {innerText: ''}).innerText.includes('Thinking')")
    shot(page, "01-reasoning-streams")
    wait_answers(page, 1)
    shot(page, "02-answered")
    titles = thought_titles(page)
    assert any(t.startswith("Thought for") for t in titles)
    assert "medium effort" in stats_lines(page)[0] and "tokens/s" in stats_lines(page)[0]
    bot = page.locator(f"#chat {BOT}").all_inner_texts()
    assert any("Hello! <b>How</b> can I help?" in t for t in bot)  # HTML from the model shows as text


def test_effort_high_is_recorded(page):
    page.locator("#effort").get_by_text("high", exact=True).click()
    send(page, "Think hard")
    wait_answers(page, 1)
    shot(page, "03-high-effort")
    assert "high effort" in stats_lines(page)[0]


def test_stop_keeps_the_partial_answer(page):
    send(page, "Go on and on")
    page.wait_for_function("() => (document.querySelector('#live') || {innerText: ''}).innerText.includes('Thinking')")
    page.locator("#stop").click()
    wait_answers(page, 1)
    shot(page, "04-stopped")
    assert "stopped" in stats_lines(page)[0]


def test_reload_reopens_from_sidebar_and_url(page):
    send(page, "Remember the aardvark")
    wait_answers(page, 1)
    url = page.url
    assert "?c=" in url
    page.reload()
    ready(page)
    page.locator(f"#chat {THOUGHT}").first.wait_for()  # reopened from ?c= with its reasoning
    shot(page, "05-reloaded")
    assert "Remember the aardvark" in page.locator("#chat").inner_text()
    assert "Remember the aardvark" in page.locator("#conversations").inner_text()
    page.locator("#new-chat").click()
    page.wait_for_function("() => !document.querySelector('#chat').innerText.includes('aardvark')")
    page.locator("#conversations").get_by_text("Remember the aardvark").click()
    page.wait_for_function("() => document.querySelector('#chat').innerText.includes('aardvark')")
    assert any(t.startswith("Thought") for t in thought_titles(page))  # the answer's fold, its steps inside


def test_search_rename_delete(page):
    send(page, "Tell me about the quokka")
    wait_answers(page, 1)
    page.locator("#conversations").get_by_text("Tell me about the quokka").wait_for()  # sidebar refreshed
    page.locator(field("search-query")).first.fill("quokka")
    page.locator("#search-results").get_by_text("quokka", exact=False).first.wait_for()
    shot(page, "06-search")
    page.get_by_text("This conversation").click()
    title = page.locator(field("title")).first
    title.wait_for()  # the closed accordion's fields are drawn when it opens
    title.fill("Marsupials")
    page.wait_for_function("() => document.querySelector('#title textarea, #title input').value === 'Marsupials'")
    page.locator("#rename").click()
    page.locator("#conversations").get_by_text("Marsupials").wait_for()
    page.locator("#delete").click()
    page.locator("#confirm-delete").click()
    page.wait_for_function("() => !document.querySelector('#conversations').innerText.includes('Marsupials')")
    shot(page, "07-deleted")


@pytest.fixture
def late_load_url(tmp_path, launched, monkeypatch):
    """The app whose page-load answer (the sidebar, and the chat named by ?c=) comes LATE_LOAD_S late, as
    on a busy server where it waits in Gradio's queue; `loaded` is set once it has answered."""
    import functools
    import threading
    import time

    from core.config import Config
    from ui.sidebar import Sidebar as Handlers

    loaded, original = threading.Event(), Handlers.load

    @functools.wraps(original)
    def late_load(self, request):
        time.sleep(LATE_LOAD_S)
        try:
            return original(self, request)
        finally:
            loaded.set()

    monkeypatch.setattr(Handlers, "load", late_load)  # before the app is built: it wires the bound method
    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400)
    launched(config)
    return f"http://127.0.0.1:{config.port}/", loaded


LATE_LOAD_S = 2.0


def test_a_late_page_load_never_undoes_a_message_sent_at_once(browser, late_load_url):
    """The message box opens only once the page's load has answered. Before, it opened at once; a message
    sent then was undone when the load answered (no conversation open: an empty chat, no id), and the
    Rename that followed had no conversation to rename (the CI's flaky test_search_rename_delete)."""
    url, loaded = late_load_url
    pg = open_page(browser, url)  # waits for the message box to open
    assert loaded.is_set()
    send(pg, "Tell me about the quokka")
    wait_answers(pg, 1)
    pg.wait_for_timeout(500)  # whatever the page would still apply
    assert url_conversation(pg)
    assert "Tell me about the quokka" in pg.locator(f"#chat {USER}").first.inner_text()
    pg.context.close()


def test_html_and_script_show_as_text(page):
    evil = "<img src=x onerror=alert(1)> and <script>alert(2)</script>"
    send(page, evil)
    wait_answers(page, 1)
    shot(page, "08-xss")
    assert evil in page.locator(f"#chat {USER}").first.inner_text()
    assert page.dialogs == []
    assert page.locator("#chat img[src='x']").count() == 0


def test_share_link_read_only_in_a_fresh_context_until_revoked(page, browser):
    send(page, "Share the platypus facts")
    wait_answers(page, 1)
    own_url = page.url
    page.locator("#share").get_by_text("Share", exact=True).first.click()
    page.locator("#share-create").click()
    link_box = page.locator(field("share-link")).first
    page.wait_for_function(f"() => [...document.querySelectorAll('{field('share-link')}')]"
                           ".some(e => e.value.startsWith('http'))")
    link = link_box.input_value()
    assert "/s/" in link
    shot(page, "09-share-created")

    visitor = browser.new_context(viewport={"width": 1000, "height": 800})  # no cookies, no session
    vp = visitor.new_page()
    vp.set_default_timeout(TIMEOUT_MS)
    vp.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    vp.goto(link)
    shot(vp, "10-shared-view")
    assert "Share the platypus facts" in vp.inner_text("main") and "Hello!" in vp.inner_text("main")
    assert "Let me think" not in vp.content()  # reasoning not shared by default
    assert vp.locator("textarea, input, button, form, script").count() == 0  # read-only, nothing runs
    vp.locator("#copy").click()  # "Copy into a new chat" opens the app, which asks, then copies
    ready(vp)
    vp.locator("#copy-confirm").click()
    vp.wait_for_function("() => document.querySelector('#chat').innerText.includes('platypus')")
    vp.wait_for_function("() => !location.href.includes('copy=') && location.href.includes('?c=')")  # then the URL
    assert vp.url.split("?c=")[1] not in own_url
    shot(vp, "11-copied")

    page.locator("#share-links").get_by_text("Share the platypus facts").click()
    page.locator("#share-revoke").click()
    page.wait_for_function("() => !document.querySelector('#share-links').innerText.includes('platypus')")
    vp.goto(link)
    assert vp.locator("body").inner_text().strip() == "This link is no longer available."
    shot(vp, "12-revoked")
    visitor.close()
    assert page.dialogs == []


def login(pg, url, user, password):
    pg.goto(url)
    pg.get_by_label("username").fill(user)
    pg.get_by_label("password").fill(password)
    pg.get_by_role("button", name="Login").click()
    ready(pg)


def test_another_users_conversation_url_shows_nothing(browser, two_user_app):
    import gradio_client

    alice = gradio_client.Client(two_user_app, auth=("alice", "alice-password"), verbose=False)
    cid = alice.submit("alice's diary entry", "", "low", "", 1.0, 64, api_name="/send").result()[2]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    login(pg, two_user_app, "bob", "bob-password")
    pg.goto(f"{two_user_app}?c={cid}")  # a copied or guessed link to alice's conversation
    ready(pg)
    pg.get_by_text("This conversation does not exist.").first.wait_for()
    shot(pg, "13-other-users-url")
    assert "diary" not in pg.locator("body").inner_text()
    pg.locator("#logout").click()  # back to the login page
    pg.get_by_label("username").wait_for()
    context.close()


def test_copy_a_shared_chat_after_logging_in(browser, two_user_app):
    import gradio_client

    alice = gradio_client.Client(two_user_app, auth=("alice", "alice-password"), verbose=False)
    cid = alice.submit("alice's recipe for bread", "", "low", "", 1.0, 64, api_name="/send").result()[2]
    link = two_user_app + alice.predict(cid, "1 day", False, api_name="/create_share")[0]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(link)  # no login needed to read it
    assert "alice's recipe for bread" in pg.inner_text("main")
    pg.locator("#copy").click()  # copying needs an account: the app asks bob to log in first
    pg.get_by_label("username").fill("bob")
    pg.get_by_label("password").fill("bob-password")
    pg.get_by_role("button", name="Login").click()
    ready(pg)
    pg.locator("#copy-row").get_by_text("alice's recipe for bread").wait_for()  # asked first, nothing copied yet
    assert "recipe for bread" not in pg.locator("#conversations").inner_text()
    pg.locator("#copy-confirm").click()
    pg.wait_for_function("() => document.querySelector('#chat').innerText.includes('recipe for bread')")
    shot(pg, "14-copied-after-login")
    assert "alice's recipe for bread" in pg.locator("#conversations").inner_text()  # now bob's own chat
    context.close()


def test_remote_images_in_messages_are_never_fetched(page, app_url):
    import http.server
    import threading

    import httpx

    from testkit.net import free_port

    hits = []

    class Tracker(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Tracker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        send(page, f"Look: ![pixel](http://127.0.0.1:{port}/t.png?leak=1)")
        wait_answers(page, 1)
        page.wait_for_timeout(1000)
        shot(page, "16-remote-image-blocked")
        assert hits == []  # the reader's browser never asked the other site
        assert "img-src 'self'" in httpx.get(app_url[0]).headers["content-security-policy"]
    finally:
        server.shutdown()


def test_export_downloads_from_the_owner_route(page):
    import json

    send(page, "Export the narwhal facts")
    wait_answers(page, 1)
    page.get_by_text("This conversation").click()
    with page.expect_download() as download:
        page.locator("#export-json").click()
    path = download.value.path()
    data = json.loads(open(path, encoding="utf-8").read())
    assert data["messages"][0]["content"] == "Export the narwhal facts"
    assert download.value.suggested_filename.endswith(".json")

"""The admin view: data only for --admins (checked on the server), shown on the page to them alone."""

import pytest
from gradio_client import Client

from core.config import Config
from core.errors import NotFoundError
from testkit.net import free_port


def start(launched, tmp_path, admins: str):
    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, admins=admins)
    parts = launched(config)
    return parts, f"http://127.0.0.1:{config.port}/"


def test_usage_queue_and_audit_for_admins_only(launched, tmp_path):
    parts, url = start(launched, tmp_path, "local, hf:boss")
    Client(url, verbose=False).submit("hi", "", "low", "", 1.0, 400, api_name="/send").result()
    data = parts.admin.overview("local")
    assert data["queue"] == {"active": 0, "waiting": 0, "max_active": 32, "max_waiting": 64}
    [usage] = data["usage"]
    assert usage["user"] == "local" and usage["answers"] == 1 and usage["completion_tokens"] > 50
    assert [r["action"] for r in data["recent"]][:2] == ["answer", "send"] and data["in_progress"] == []
    assert parts.admin.is_admin("hf:boss") and not parts.admin.is_admin("boss")
    with pytest.raises(NotFoundError):
        parts.admin.overview("someone")


def test_the_admin_accordion_shows_for_an_admin_only(browser, launched, tmp_path):
    from testkit.page import open_page, send, wait_answers

    _, url = start(launched, tmp_path / "admin", "local")
    pg = open_page(browser, url)
    send(pg, "hi")
    wait_answers(pg, 1)
    pg.locator("#admin").wait_for()
    pg.locator("#admin .label-wrap").first.click()
    pg.locator("#admin-refresh").click()
    pg.wait_for_function("() => document.querySelector('#admin-usage').innerText.includes('local')")
    assert "decoding" in pg.locator("#admin-queue").inner_text()
    pg.context.close()
    _, url = start(launched, tmp_path / "plain", "")
    pg = open_page(browser, url)
    pg.wait_for_timeout(1000)
    assert not pg.locator("#admin").is_visible()
    pg.context.close()

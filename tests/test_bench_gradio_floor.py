"""Gradio's floor page (bench/gradio_floor.py) shows the synthetic completion's words on its schedule
and logs their emission the way the synthetic engine does, so bench.app_ceiling compares it with the app."""

import asyncio
import json

from bench.gradio_floor import CAPACITY, FloorPage
from bench.synthetic import ANSWER_WORD, ANSWER_WORDS, REASONING_WORDS, WORD, EmissionLog
from ui.floor_page import build


def _text(messages) -> str:
    return "".join(part["text"] for m in messages for part in m["content"])


def test_a_turn_streams_the_words_as_they_fall_due_and_logs_when(encoding, tmp_path):
    log = tmp_path / "emit.jsonl"
    page = FloorPage(encoding, rate=3000.0, log=EmissionLog(log))  # 300 tokens in 0.1 s
    history, live, tag, box = page.start("Tell me about stripes [7-3]", "")
    assert tag == "7-3" and box == "" and live == [] and _text(history).endswith("[7-3]")

    async def follow():
        return [out async for out in page.follow(tag)]

    updates = asyncio.run(follow())
    final_chat, final_live = updates[-1]
    assert final_live == []
    assert _text(final_chat).count(WORD) == REASONING_WORDS and _text(final_chat).count(ANSWER_WORD) == ANSWER_WORDS
    shown = [_text(live).count(WORD) + _text(live).count(ANSWER_WORD) for _, live in updates[:-1]]
    assert shown == sorted(shown)  # words only ever come in
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["tag"] == "7-3" and len(entry["t"]) == REASONING_WORDS + ANSWER_WORDS
    assert entry["t"] == sorted(entry["t"])
    assert page.pace.watching == 0


def test_the_page_has_the_turn_shape_the_load_client_drives(encoding, tmp_path):
    page = FloorPage(encoding, 100.0, EmissionLog(tmp_path / "emit.jsonl"))
    demo = build(page.start, page.follow, CAPACITY)
    config = demo.get_config_file()
    ids = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
    assert {"chat", "live", "message", "conversation-id"} <= set(ids)
    start = next(d for d in config["dependencies"] if (ids["message"], "submit") in [tuple(t) for t in d["targets"]])
    follow = next(d for d in config["dependencies"] if d.get("trigger_after") == start["id"])
    assert start["queue"] is False and follow["queue"] is not False
    assert follow["outputs"] == [ids["chat"], ids["live"]]

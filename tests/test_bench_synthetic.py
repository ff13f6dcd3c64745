"""bench/synthetic.py's model-paced engine: a real model's decode steps, the synthetic words.

bench.app_ceiling --model runs the app on it (the 20b shape on a GPU); here the tiny GptOss on the
CPU, through the real worker, proves the page would see exactly the synthetic completion, paced by
the model, with one logged emission time per shown word."""

import json

from backend.harmony.codec import PromptMessage, PromptSettings
from backend.serving.worker import ChatRequest, Worker
from bench.synthetic import (
    ANSWER_WORD,
    ANSWER_WORDS,
    REASONING_WORDS,
    WORD,
    EmissionLog,
    ModelPacedEngine,
    ScriptedStream,
    completion,
)
from core.events import Answer, Done, Reasoning, StopReason


def test_a_scripted_stream_swaps_every_id_and_logs_each_shown_word(encoding, tmp_path):
    log = EmissionLog(tmp_path / "emit.jsonl")
    script = completion(encoding)
    stream = ScriptedStream(script, None, "1-0", log)
    stream.push([7, 7, 7])  # whatever the model chose
    stream.push([9] * (len(script[0]) - 3))
    stream.close(StopReason.LENGTH)  # the model ran to the script's length: that is the script's <|return|>
    assert stream.read() == script[0]
    assert stream.finish_reason == StopReason.STOP_ID
    (entry,) = [json.loads(line) for line in (tmp_path / "emit.jsonl").read_text().splitlines()]
    assert entry["tag"] == "1-0" and len(entry["t"]) == REASONING_WORDS + ANSWER_WORDS


def test_the_worker_reads_the_synthetic_completion_off_a_real_model(codec, tiny_model, tmp_path):
    engine = ModelPacedEngine(tiny_model, codec.encoding, EmissionLog(tmp_path / "emit.jsonl"), do_sample=False)
    try:
        events = list(Worker(engine, codec).submit(
            ChatRequest([PromptMessage("user", "[2-5] hello")], PromptSettings(date="2026-11-29"),
                        max_new_tokens=2000)).events())
    finally:
        engine.close()
    done = events[-1]
    assert isinstance(done, Done) and done.stop_reason == "return" and not done.malformed
    assert "".join(e.text for e in events if isinstance(e, Reasoning)) == WORD * REASONING_WORDS
    assert "".join(e.text for e in events if isinstance(e, Answer)) == ANSWER_WORD * ANSWER_WORDS
    (entry,) = [json.loads(line) for line in (tmp_path / "emit.jsonl").read_text().splitlines()]
    assert entry["tag"] == "2-5" and len(entry["t"]) == REASONING_WORDS + ANSWER_WORDS
    assert entry["t"] == sorted(entry["t"])

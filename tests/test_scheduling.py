"""A short prompt is not held behind a long one's prefill (backend/engines/scheduling.py), on the real tiny
GptOss through transformers' continuous batching. transformers' FIFO scheduler runs beside it, to show
what the test tells apart: there the short request's first token comes only after the long prompt's."""

import threading

import pytest

from backend.engines import scheduling
from backend.engines.base import SamplingParams
from backend.engines.transformers_engine import TransformersEngine


def first_tokens_in_order(engine, prompts: dict[str, list[int]]) -> list[str]:
    """Submit the prompts in order, at once; the names in the order their first token came."""
    order, lock = [], threading.Lock()

    def first(name, stream):
        assert stream.read()  # blocks until the first generated token
        with lock:
            order.append(name)
        stream.cancel()

    streams = {name: engine.submit(ids, SamplingParams(max_new_tokens=4), stop_ids=[]) for name, ids in prompts.items()}
    threads = [threading.Thread(target=first, args=item) for item in streams.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return order


@pytest.mark.parametrize("scheduler, expected", [(scheduling.NAME, ["short", "long"]), ("fifo", ["long", "short"])])
def test_a_short_prompt_starts_beside_a_long_prefill(tiny_model, scheduler, expected):
    # 16 tokens a step: the long prompt's prefill takes 125 steps; the short one needs one step of 3 tokens
    engine = TransformersEngine(tiny_model, do_sample=False, max_batch_tokens=16, scheduler=scheduler)
    try:
        long_prompt = [1000 + i % 5000 for i in range(2000)]
        assert first_tokens_in_order(engine, {"long": long_prompt, "short": [200, 201, 202]}) == expected
    finally:
        engine.close()

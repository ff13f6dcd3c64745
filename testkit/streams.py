"""Reading the app's streamed /send updates through gradio_client (tests and benches alike)."""

from __future__ import annotations

import time


def live_value(output) -> list:
    """The live chatbot's messages in one streamed update (a value, or an update with a value)."""
    live = output[1] if output else None
    if isinstance(live, dict):
        live = live.get("value")
    return live if isinstance(live, list) else []


def first_text_time(job) -> tuple[float | None, float]:
    """Consume a /send job; (when the first text showed in the live panel, when the stream ended)."""
    first = None
    for output in job:
        if first is None and any(m.get("content") for m in live_value(output)):
            first = time.perf_counter()
    return first, time.perf_counter()

"""Gradio's per-event bookkeeping, made cheap before the queue is built (measured with py-spy under
bench/app_ceiling.py; each item below was several per cent of the server's CPU at 64 streams).

- The monitoring summary (`/monitoring`): Gradio rebuilds a pandas table of up to 10,000 past events
  and its percentiles after *every* event, streamed updates and timer ticks included. We keep the
  last 1,000 events and refresh the summary every 500.
- Every event step enters a matplotlib guard that imports matplotlib; where it is not installed the
  failed import searches the whole path again, twice per streamed update. Marking it absent once
  makes that import fail at once (only when it really is not installed).
Settings a deployment sets itself (the GRADIO_* environment variables) win.
"""

from __future__ import annotations

import importlib.util
import os
import sys

ANALYTICS_MAX_EVENTS = "1000"
ANALYTICS_EVERY = "500"


def lighten_gradio() -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", ANALYTICS_MAX_EVENTS)
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", ANALYTICS_EVERY)
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # `import matplotlib` now raises ImportError without a search

"""Gradio's per-event bookkeeping, made cheap before the queue is built (measured with py-spy under
bench/app_ceiling.py; each item below was several per cent of the server's CPU at 64 streams).

- The monitoring summary (`/monitoring`): Gradio rebuilds a pandas table of up to 10,000 past events
  and its percentiles after *every* event, streamed updates and timer ticks included. We keep the
  last 1,000 events and refresh the summary every 500.
- Every event step enters a matplotlib guard that imports matplotlib; where it is not installed the
  failed import searches the whole path again, twice per streamed update. Marking it absent once
  makes that import fail at once (only when it really is not installed).
- The queue's loop looks for new events every 1 ms while it has none (and its progress loop every
  10 ms): 2.2 % of a core with nobody on the page (from /proc), about 40 % of the server's CPU per
  page update when one chat streams. `calm_queue` makes it look every 10 ms (a queued event may wait that much
  longer to start; a busy queue never sleeps) and the progress loop, which nothing here uses, every 0.5 s.
Settings a deployment sets itself (the GRADIO_* environment variables) win.
"""

from __future__ import annotations

import importlib.util
import os
import sys

ANALYTICS_MAX_EVENTS = "1000"
ANALYTICS_EVERY = "500"
QUEUE_IDLE_POLL_S = 0.01
PROGRESS_POLL_S = 0.5


def lighten_gradio() -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", ANALYTICS_MAX_EVENTS)
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", ANALYTICS_EVERY)
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # `import matplotlib` now raises ImportError without a search


def calm_queue(demo) -> None:
    """After `demo.queue(...)`: the idle queue's polling slowed down (see above). Gradio's attributes,
    not an API: where a version lacks them nothing changes."""
    queue = getattr(demo, "_queue", None)
    for name, seconds in (("sleep_when_free", QUEUE_IDLE_POLL_S), ("progress_update_sleep_when_free", PROGRESS_POLL_S)):
        if isinstance(getattr(queue, name, None), (int, float)):
            setattr(queue, name, max(getattr(queue, name), seconds))


def queue_events(demo, concurrency: int, max_size: int) -> None:
    """Gradio's queue as the app runs it (the page, and bench/gradio_floor.py's bare page, which must
    measure the same settings): the bookkeeping lightened before the queue is built, the idle queue
    calmed after."""
    lighten_gradio()
    demo.queue(default_concurrency_limit=concurrency, max_size=max_size)
    calm_queue(demo)

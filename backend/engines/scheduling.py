"""Which requests share each continuous-batching step: new prompts before the rest of a long one.

transformers' FIFO scheduler gives every step's token budget (`max_batch_tokens`) first to the requests
decoding, then to a prompt whose prefill was split over several steps, and only then to requests still
waiting. One long prompt therefore took the whole budget step after step until its prefill ended: a short
chat sent meanwhile waited for all of it (measured, demo model on CPU: 22k-token prompt, short chat's first
token 80 ms alone, 26-41 s beside it; `python -m bench.prefill`). Here waiting requests come before the
split prefill: a short prompt fits into the next step beside the long prompt's chunk, whose prefill goes on
with what is left of the budget. Decoding requests stay first, as in FIFO.

Registered under its name in transformers' own table of schedulers (SCHEDULER_MAPPING), which
`ContinuousBatchingConfig(scheduler_type=...)` picks from.
"""

from __future__ import annotations

NAME = "new_prompts_first"


def register() -> str:
    """Add the scheduler to transformers' table (once); returns its name for ContinuousBatchingConfig."""
    from transformers.generation.continuous_batching import scheduler as library

    if NAME not in library.SCHEDULER_MAPPING:
        library.SCHEDULER_MAPPING[NAME] = _scheduler_class(library)
    return NAME


def _scheduler_class(library):
    from transformers.generation.continuous_batching.requests import RequestStatus

    class NewPromptsFirstScheduler(library.FIFOScheduler):
        """FIFO, except that requests waiting to start come before a prompt whose prefill is split."""

        def schedule_batch(self, token_budget: int, cache_budget: int):
            decoding = [s for s in self.active_requests.values() if s.status == RequestStatus.DECODING]
            split = [s for s in self.active_requests.values() if s.status == RequestStatus.PREFILLING]
            waiting = [] if self.block_new_requests else list(self._get_waiting_candidates())
            removed: set[str] = set()
            scheduled, failed, fast_path, q_tokens, kv_read = self._process_candidates(
                decoding + waiting + split, token_budget, cache_budget, removed)
            self._cleanup_waiting_queue(removed)
            if not scheduled and failed:  # the cache is full: the manager offloads or waits
                return None, fast_path, 0, 0
            return scheduled, fast_path, q_tokens, kv_read

    return NewPromptsFirstScheduler

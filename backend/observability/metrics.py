"""Prometheus metrics (prometheus_client), in a registry of their own (several apps in one process,
as in the tests, never collide). Served on /metrics with --metrics-token (a bearer token), or on
a port of their own with --metrics-port; off otherwise.

    gpt_oss_chat_requests_total{effort,outcome,via}   answers by effort and how they ended
    gpt_oss_chat_ttft_seconds / _tokens_per_second    histograms per answer
    gpt_oss_chat_queue_depth / _active_requests       the worker now
    gpt_oss_chat_busy_refusals_total                  refused because every slot was taken
    gpt_oss_chat_limit_refusals_total{limit}          refused by a per-user limit
    gpt_oss_chat_tool_calls_total{tool,outcome}       tool calls run by the agent loop
    gpt_oss_chat_sign_in_failures_total               wrong passwords (and throttled tries)
    gpt_oss_chat_page_updates_total                   updates sent to pages (rate(): per second)
    gpt_oss_chat_model_restarts_total                 the model's process died and was started again
    gpt_oss_chat_engine_failures                      requests the engine failed (refused, or ended with an error)
    gpt_oss_chat_batching_restarts                    the continuous-batching manager started again after a fatal error
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from backend.tools.toolbox import BUILT_IN_FUNCTIONS

CONTENT_TYPE = CONTENT_TYPE_LATEST
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
SPEED_BUCKETS = (1, 5, 10, 20, 50, 100, 200, 500, 1000)


class Metrics:
    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("gpt_oss_chat_requests", "Answers by effort and outcome", ["effort", "outcome", "via"],
                                registry=r)
        self.ttft = Histogram("gpt_oss_chat_ttft_seconds", "Time to the first token", buckets=TTFT_BUCKETS,
                              registry=r)
        self.speed = Histogram("gpt_oss_chat_tokens_per_second", "Decoding speed per answer", buckets=SPEED_BUCKETS,
                               registry=r)
        self.queue = Gauge("gpt_oss_chat_queue_depth", "Requests waiting for a decoding slot", registry=r)
        self.active = Gauge("gpt_oss_chat_active_requests", "Requests decoding now", registry=r)
        self.busy = Counter("gpt_oss_chat_busy_refusals", "Requests refused: every slot and queue place taken",
                            registry=r)
        self.limited = Counter("gpt_oss_chat_limit_refusals", "Requests refused by a per-user limit", ["limit"],
                               registry=r)
        self.tools = Counter("gpt_oss_chat_tool_calls", "Tool calls by tool and outcome", ["tool", "outcome"],
                             registry=r)
        self.sign_in_failures = Counter("gpt_oss_chat_sign_in_failures", "Failed or throttled sign-ins", registry=r)
        self.page_updates = Counter("gpt_oss_chat_page_updates", "Updates streamed to pages", registry=r)
        self.model_restarts = Counter("gpt_oss_chat_model_restarts", "Model processes restarted after dying",
                                      registry=r)
        # Read from the worker when scraped (counts kept where they happen; the model's process says its own)
        self.engine_failures = Gauge("gpt_oss_chat_engine_failures", "Requests the engine failed since the start",
                                     registry=r)
        self.batching_restarts = Gauge("gpt_oss_chat_batching_restarts",
                                       "Continuous-batching manager restarts after a fatal error", registry=r)

    def watch(self, host) -> None:
        """Queue depth and active requests are read from the worker when scraped."""
        def read(name: str) -> float:
            worker = getattr(host, "_worker", None)
            return float(getattr(worker, name, 0) if worker is not None else 0)

        self.queue.set_function(lambda: read("waiting"))
        self.active.set_function(lambda: read("active"))
        worker = lambda: getattr(host, "_worker", None)  # noqa: E731
        self.engine_failures.set_function(lambda: float(worker().health.failures if worker() else 0))
        self.batching_restarts.set_function(
            lambda: float(getattr(worker().engine, "manager_restarts", 0) if worker() else 0))
        host.on_restart = self.model_restarts.inc

    def answered(self, effort: str, done, via: str) -> None:
        s = done.stats
        self.requests.labels(effort or "-", str(done.stop_reason), via).inc()
        if s.ttft is not None:
            self.ttft.observe(s.ttft)
        if s.tokens_per_s:
            self.speed.observe(s.tokens_per_s)

    def tool_call(self, recipient: str, status: str) -> None:
        """Labelled by the tool (python, browser.search, functions.calculate); the users' own functions
        share one label, so a label per name someone typed cannot grow the series without bound."""
        name = recipient.removeprefix("functions.")
        user_function = recipient.startswith("functions.") and name not in BUILT_IN_FUNCTIONS
        self.tools.labels("functions.(user)" if user_function else recipient, status).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

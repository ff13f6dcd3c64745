"""Owns the model's life: load it in the background, report progress, hand out the worker.

The page starts at once and polls `status()`; chats get the worker through
`worker()`, which says plainly when the model is still loading or failed. An engine whose process
dies (it sets its `died` event) is closed (the child reaped) and built again, with a notice on the
page and in /healthz meanwhile; a model that keeps dying is marked failed instead of looping.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from backend.engines.base import EngineInfo
from backend.harmony.codec import HarmonyCodec
from backend.serving.worker import Worker
from core.errors import ChatError, GenerationError

log = logging.getLogger(__name__)
MODEL_FAILED = "The model could not be loaded. The server's log says why; whoever runs this server can fix it."
KEEPS_DYING = "The model process keeps stopping. The server's log says why; whoever runs this server can fix it."
RESTARTING = "Starting a new model process"
MAX_RESTARTS, RESTART_WINDOW_S = 3, 600.0  # more deaths than this within the window: failed, not restarted


@dataclass
class HostStatus:
    state: str = "loading"  # loading | ready | failed
    stage: str = "Starting"
    fraction: float | None = None
    error: str | None = None  # a plain sentence any visitor may read (no paths, no library text)
    description: EngineInfo = field(default_factory=EngineInfo)  # what runs (set once ready)
    detail: str | None = None  # what failed and what to do, for the operator (log, local single user)
    restarts: int = 0  # how often the model's process died and was started again since the app started
    degraded: bool = False  # ready, but the engine failed a request lately and has served none since


class ModelHost:
    def __init__(self, build_engine: Callable, codec: HarmonyCodec, worker_kwargs: dict):
        self._build_engine = build_engine  # (progress) -> Engine
        self.codec = codec
        self._worker_kwargs = worker_kwargs
        self._worker: Worker | None = None
        self._status = HostStatus()
        self._lock = threading.Lock()
        self._deaths: list[float] = []  # when the model's process died (monotonic), for MAX_RESTARTS
        self._closed = False
        self.on_restart: Callable[[], None] = lambda: None  # the metrics' counter

    def start(self, background: bool = True) -> None:
        if background:
            threading.Thread(target=self._load, name="model-loader", daemon=True).start()
        else:
            self._load()

    def _progress(self, stage: str, fraction: float | None) -> None:
        with self._lock:
            self._status.stage, self._status.fraction = stage, fraction

    def _load(self) -> None:
        try:
            engine = self._build_engine(self._progress)
        except ChatError as exc:
            log.error("model failed to load: %s", exc.user_message)
            self._fail(exc.user_message)
            return
        except Exception as exc:  # a bug or an unexpected library error: still tell the page
            log.exception("model failed to load")
            self._fail(f"The model failed to load: {type(exc).__name__}: {exc}")
            return
        worker = Worker(engine, self.codec, **self._worker_kwargs)
        with self._lock:
            self._worker = worker
            self._status = HostStatus("ready", "Ready", 1.0, None, engine.description, restarts=self._status.restarts)
        d = engine.description
        log.info("model ready: %s (%s, %s)", d.model, d.engine, d.quantization)
        died = getattr(engine, "died", None)  # an engine in a process of its own can die alone
        if died is not None:
            threading.Thread(target=self._watch, args=(engine, died), name="model-watch", daemon=True).start()

    def _watch(self, engine, died: threading.Event) -> None:
        """Wait for the engine's process to die; then reap it and load the model again."""
        died.wait()
        if self._closed:
            return
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW_S] + [now]
        with self._lock:
            self._worker = None  # new chats hear "restarting" at once, not the dead engine's error
            restarts = self._status.restarts + 1
            self._status = HostStatus("loading", RESTARTING, None, restarts=restarts)
        engine.close()  # joins the child: no zombie
        if len(self._deaths) > MAX_RESTARTS:
            log.error("the model process died %d times in %.0f s: not restarting it again",
                      len(self._deaths), RESTART_WINDOW_S)
            self._fail(KEEPS_DYING, error=KEEPS_DYING)
            return
        log.error("the model process died: restarting it (restart %d)", restarts)
        self.on_restart()
        self._load()

    def _fail(self, detail: str, error: str = MODEL_FAILED) -> None:
        with self._lock:
            self._status.state, self._status.error, self._status.detail = "failed", error, detail

    def status(self) -> HostStatus:
        with self._lock:
            s, worker = self._status, self._worker
            return HostStatus(s.state, s.stage, s.fraction, s.error, s.description, s.detail, s.restarts,
                              degraded=s.state == "ready" and worker is not None and worker.health.degraded)

    def worker(self) -> Worker:
        status = self.status()
        if status.state == "failed":
            raise GenerationError(f"The model is not available: {status.error}")
        worker = self._worker
        if worker is None:
            pct = f" ({status.fraction:.0%})" if status.fraction is not None else ""
            what = "being restarted (its process stopped unexpectedly)" if status.restarts else "still loading"
            raise GenerationError(f"The model is {what}: {status.stage}{pct}. "
                                  "Your message was saved; press Regenerate when it is ready.")
        return worker

    def close(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._worker.engine.close()

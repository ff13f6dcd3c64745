"""Owns the model's life: load it in the background, report progress, hand out the worker.

The page starts at once and polls `status()`; chats get the worker through
`worker()`, which says plainly when the model is still loading or failed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

from backend.engines.base import EngineInfo
from backend.harmony.codec import HarmonyCodec
from backend.serving.worker import Worker
from core.errors import ChatError, GenerationError

log = logging.getLogger(__name__)
MODEL_FAILED = "The model could not be loaded. The server's log says why; whoever runs this server can fix it."


@dataclass
class HostStatus:
    state: str = "loading"  # loading | ready | failed
    stage: str = "Starting"
    fraction: float | None = None
    error: str | None = None  # a plain sentence any visitor may read (no paths, no library text)
    description: EngineInfo = field(default_factory=EngineInfo)  # what runs (set once ready)
    detail: str | None = None  # what failed and what to do, for the operator (log, local single user)


class ModelHost:
    def __init__(self, build_engine: Callable, codec: HarmonyCodec, worker_kwargs: dict):
        self._build_engine = build_engine  # (progress) -> Engine
        self.codec = codec
        self._worker_kwargs = worker_kwargs
        self._worker: Worker | None = None
        self._status = HostStatus()
        self._lock = threading.Lock()

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
            self._status = HostStatus("ready", "Ready", 1.0, None, engine.description)
        d = engine.description
        log.info("model ready: %s (%s, %s)", d.model, d.engine, d.quantization)

    def _fail(self, detail: str) -> None:
        with self._lock:
            self._status.state, self._status.error, self._status.detail = "failed", MODEL_FAILED, detail

    def status(self) -> HostStatus:
        with self._lock:
            s = self._status
            return HostStatus(s.state, s.stage, s.fraction, s.error, s.description, s.detail)

    def worker(self) -> Worker:
        status = self.status()
        if status.state == "failed":
            raise GenerationError(f"The model is not available: {status.error}")
        if self._worker is None:
            pct = f" ({status.fraction:.0%})" if status.fraction is not None else ""
            raise GenerationError(f"The model is still loading: {status.stage}{pct}. "
                                  "Your message was saved; press Regenerate when it is ready.")
        return self._worker

    def close(self) -> None:
        if self._worker is not None:
            self._worker.engine.close()

"""An engine in its own process, behind the same interface: token ids in, token ids out, cancellable.

Why: the in-process model's continuous-batching loop is Python between its tensor operations, and so
is everything the page does; in one process they take turns on one interpreter lock, so a busy page
slows the model down. Here the model and its batching loop run in a child process (spawned, so CUDA
starts clean) and only token ids cross: the parent sends requests and cancels, one forwarding thread
in the child collects every stream's new ids a few dozen times a second and sends them as one message.

If the child dies (the kernel's OOM killer, a crash in a kernel), every open stream ends with an error,
later requests are refused with a clear message, and `died` is set: the model host reaps the child
and starts a new one (backend/serving/host.py). The app keeps running.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import threading
import time
from typing import Callable

from backend.engines.base import Engine, EngineInfo, SamplingParams, TokenStream
from core.errors import GenerationError, ModelLoadError
from core.events import StopReason

log = logging.getLogger(__name__)

FORWARD_TICK_S = 0.01  # the child sends new ids at most this often (one message for all streams)
STOP_TIMEOUT_S = 10.0
DIED = ("The model process stopped unexpectedly (the server's log says why); it is being restarted. "
        "Your message is saved: press Regenerate once the model is ready.")


class ProcessEngine:
    def __init__(self, factory: Callable[[Callable], Engine], progress: Callable[[str, float | None], None]):
        """`factory(progress)` builds the engine in the child; it must be picklable (a module-level
        function or a functools.partial of one). Blocks until the engine is ready; a failure to build
        it raises ModelLoadError with the child's message."""
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, args=(child_conn, factory), name="model", daemon=True)
        self._proc.start()
        child_conn.close()
        self._streams: dict[int, TokenStream] = {}
        self._lock = threading.Lock()  # guards _streams, _next, _dead and sending
        self._next, self._dead = 0, False
        self.died = threading.Event()  # set when the child is gone without being closed
        self.manager_restarts = 0  # the child's batching manager started again after a fatal error (/metrics)
        self._closing = False
        self.description = self._wait_ready(progress).with_(process=f"own process (pid {self._proc.pid})")
        threading.Thread(target=self._read, name="model-process-reader", daemon=True).start()

    def _wait_ready(self, progress) -> EngineInfo:
        while True:
            try:
                msg = self._conn.recv()
            except EOFError:
                raise ModelLoadError(DIED) from None
            if msg[0] == "progress":
                progress(msg[1], msg[2])
            elif msg[0] == "ready":
                return msg[1]
            elif msg[0] == "failed":
                self._proc.join(STOP_TIMEOUT_S)
                raise ModelLoadError(msg[1])

    # -- the engine interface ---------------------------------------------------------------

    def submit(self, prompt_ids: list[int], params: SamplingParams, stop_ids: list[int], chat=None) -> TokenStream:
        with self._lock:
            if self._dead:
                raise GenerationError(DIED)
            rid = self._next = self._next + 1
            stream = TokenStream(on_cancel=lambda: self._send(("cancel", rid)))
            self._streams[rid] = stream
            self._conn.send(("submit", rid, list(prompt_ids), params, list(stop_ids)))
        return stream

    def close(self) -> None:
        self._closing = True
        self._send(("close",))
        self._proc.join(STOP_TIMEOUT_S)  # also reaps a child that died (no zombie left)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(STOP_TIMEOUT_S)

    # -- the parent's reader ------------------------------------------------------------------

    def _send(self, msg) -> None:
        with self._lock:
            if not self._dead:
                try:
                    self._conn.send(msg)
                except (OSError, EOFError):
                    pass  # the reader notices the child is gone

    def _read(self) -> None:
        while True:
            try:
                kind, new_ids, ended, self.manager_restarts = self._conn.recv()
            except (EOFError, OSError):
                break
            for rid, ids in new_ids.items():
                stream = self._streams.get(rid)
                if stream is not None:
                    stream.push(ids)
            for rid, reason, error, usage in ended:
                stream = self._streams.pop(rid, None)
                if stream is not None:
                    stream.usage = usage
                    stream.close(reason, error)
        with self._lock:
            self._dead = True
            streams, self._streams = list(self._streams.values()), {}
        if streams or self._proc.exitcode not in (0, None):
            log.error("the model process ended (exit code %s)", self._proc.exitcode)
        for stream in streams:
            stream.close(StopReason.ERROR, DIED)
        if not self._closing:
            self.died.set()


# -- the child -----------------------------------------------------------------------------------

def _child_main(conn, factory) -> None:
    from core.logs import setup_logging

    setup_logging()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the app decides
    # when the model stops (it closes the pipe, or this process sees it closed when the app is gone)
    send_lock = threading.Lock()

    def send(msg) -> None:
        with send_lock:
            conn.send(msg)

    try:
        engine = factory(lambda stage, fraction=None: send(("progress", stage, fraction)))
    except Exception as exc:  # the parent shows it as the model failing to load
        log.exception("building the engine failed")
        send(("failed", getattr(exc, "user_message", None) or f"{type(exc).__name__}: {exc}"))
        return
    send(("ready", engine.description))
    streams: dict[int, TokenStream] = {}
    lock = threading.Lock()
    stop = threading.Event()
    forwarder = threading.Thread(target=_forward, args=(streams, lock, send, stop, engine), daemon=True)
    forwarder.start()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break  # the parent is gone
        if msg[0] == "submit":
            _, rid, prompt_ids, params, stop_ids = msg
            try:
                stream = engine.submit(prompt_ids, params, stop_ids)
            except Exception as exc:  # one bad request never takes the others down
                stream = TokenStream()
                stream.close(StopReason.ERROR, str(exc))
            with lock:
                streams[rid] = stream
        elif msg[0] == "cancel":
            with lock:
                stream = streams.get(msg[1])
            if stream is not None:
                stream.cancel()
        elif msg[0] == "close":
            break
    stop.set()
    forwarder.join(STOP_TIMEOUT_S)
    engine.close()


def _forward(streams: dict, lock: threading.Lock, send, stop: threading.Event, engine) -> None:
    """Every tick: the new ids of every stream, and the streams that ended, in one message."""
    while not stop.is_set():
        time.sleep(FORWARD_TICK_S)
        new_ids, ended = {}, []
        with lock:
            current = list(streams.items())
        for rid, stream in current:
            ids = []
            try:
                while (chunk := stream.read(timeout=0)) is not None:
                    ids += chunk
                closed = True
            except queue.Empty:  # nothing more for now
                closed = False
            if ids:
                new_ids[rid] = ids
            if closed:
                ended.append((rid, stream.finish_reason, stream.error, stream.usage))
                with lock:
                    streams.pop(rid, None)
        if new_ids or ended:
            send(("ids", new_ids, ended, getattr(engine, "manager_restarts", 0)))

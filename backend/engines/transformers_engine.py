"""The in-process engine: one GptOssForCausalLM behind transformers' continuous batching.

transformers' ContinuousBatchingManager owns the batching (its own thread
schedules requests and steps the model). We add only a router thread that
takes the manager's outputs (cumulative token lists, one per step in
streaming mode) and hands each request the ids it has not seen yet. We do not
use `request_id_iter`: with many consumers it re-queues other requests'
outputs, which costs time and can reorder them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from backend.engines import scheduling
from backend.engines.base import EngineInfo, SamplingParams, TokenStream
from core.errors import GenerationError
from core.events import StopReason

log = logging.getLogger(__name__)

MIN_TEMPERATURE = 1e-3  # temperature 0 means "greedy"; dividing by 0 would give NaNs
ROUTER_POLL_S = 0.05
# The manager's loop builds its batch processor on its own thread after `start()`; stopping it
# before then works but prints a warning into the app's log, so `close` waits this long for it.
LOOP_START_WAIT_S = 5.0
# The CB temperature processor exists only if the generation config's
# temperature differs from 1.0 when the manager is built. Every request passes
# its own temperature, so this value is never used for sampling.
_PLACEHOLDER_TEMPERATURE = 0.5
# Left alone, continuous batching sizes its KV cache from free memory: on a CPU
# that is 60% of the machine's RAM per manager. Cap it there; on a GPU let it
# size the cache but keep batches small enough for eager paged attention's
# masks (the transformers default ran out of memory on an H100 with gpt-oss-20b).
CPU_NUM_BLOCKS = 128  # x 256 tokens per block
PAGE_SIZE = 256  # tokens per cache block (ContinuousBatchingConfig's page_size default, left as it is)
DEFAULT_MAX_BATCH_TOKENS = 512


class TransformersEngine:
    """Engine over a loaded model; `from_config` loads one the configured way.

    `use_cuda_graph` None leaves CUDA graphs to transformers, which turns them off with eager
    attention (what runs offline); forcing them on was slower on an H200 (README, Performance)."""

    def __init__(self, model, *, description: EngineInfo | None = None, do_sample: bool = True,
                 max_batch_tokens: int | None = None, num_blocks: int | None = None,
                 logits_processors: list | None = None, seed: int | None = None,
                 use_cuda_graph: bool | None = None, scheduler: str | None = None):
        self.model = model
        # which requests share a step: ours (backend/engines/scheduling.py) unless a bench compares another
        ours = scheduling.register()
        self._scheduler = scheduler or ours
        self.description = description or EngineInfo(model=getattr(model, "name_or_path", "?"))
        self.do_sample = do_sample
        if num_blocks is None and model.device.type == "cpu":
            num_blocks = CPU_NUM_BLOCKS
        self._cb_args = dict(max_batch_tokens=max_batch_tokens or DEFAULT_MAX_BATCH_TOKENS,
                             num_blocks=num_blocks, seed=seed, use_cuda_graph=use_cuda_graph)
        # What one request may hold: the model's window, or the cache where it is smaller (a request the
        # cache cannot hold would wait forever, then fail with transformers' "cannot be scheduled").
        window = getattr(model.config, "max_position_embeddings", None) or self.description.context
        self.description = self.description.with_(
            context=min(window, num_blocks * PAGE_SIZE) if num_blocks else window, constraints=True)
        self._streams: dict[str, TokenStream] = {}
        self._stop_ids: dict[str, set[int]] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._counter = 0
        self.manager_restarts = 0  # started again after a fatal error stopped it (/metrics)
        self._extra_processors = list(logits_processors or [])
        self.manager = self._new_manager()
        self._router = threading.Thread(target=self._route, name="cb-router", daemon=True)
        self._router.start()

    @classmethod
    def from_config(cls, config, progress: Callable | None = None) -> "TransformersEngine":
        from backend.engines.loader import load_model

        loaded = load_model(config.model, config.quantization, config.device_map, progress)
        description = EngineInfo(model=config.model, quantization=loaded.quantization,
                                 engine="transformers (continuous batching)", notice=loaded.notice or "",
                                 device=str(loaded.model.device))
        return cls(loaded.model, description=description, max_batch_tokens=config.max_batch_tokens,
                   num_blocks=config.num_blocks)

    # -- the Engine interface ------------------------------------------------------

    def submit(self, prompt_ids: list[int], params: SamplingParams, stop_ids: list[int],
               chat=None) -> TokenStream:
        self._ensure_running()
        with self._lock:
            self._counter += 1
            rid = f"chat-{self._counter}"
        stream = self._new_stream(rid)
        kwargs = {"temperature": max(float(params.temperature), MIN_TEMPERATURE)} if self.do_sample else {}
        if params.constraint is not None:
            self._masks.add(rid, params.constraint.start())
        with self._lock:  # register before adding: the first token may arrive at once
            self._streams[rid] = stream
            self._stop_ids[rid] = set(stop_ids)
        added = self.manager.add_request(list(prompt_ids), request_id=rid, max_new_tokens=params.max_new_tokens,
                                         streaming=True, eos_token_id=list(stop_ids), **kwargs)
        if added is None:
            self._forget(rid)
            raise GenerationError("The model is not accepting requests right now (it is restarting). Try again.")
        return stream

    def close(self) -> None:
        self._closing = True
        self._stop_manager(timeout=10)
        self._router.join(timeout=2)
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            stream.close(StopReason.ERROR, "The server is shutting down.")

    # -- internals ------------------------------------------------------------------

    def _new_stream(self, rid: str) -> TokenStream:
        """The one place a request's stream is made (bench/synthetic.py's ModelPacedEngine makes its own)."""
        return TokenStream(on_cancel=lambda: self._cancel(rid))

    def _with_extra_processors(self, masks):
        """`model._get_logits_processor`, extended with our processors: a test's extra ones, and `masks`
        (the requests' constraints), last, so that they mask what the others left.

        The manager asks the model for its processors once, while it is built; we
        shadow the method for that call only, so the shared model is left as it was.
        """
        original, extra = self.model._get_logits_processor, self._extra_processors + [masks]

        def with_extra(generation_config, *args, **kwargs):
            chain = original(generation_config, *args, **kwargs)
            chain.extend(extra)
            return chain

        return with_extra

    def _new_manager(self):
        from transformers import GenerationConfig
        from transformers.generation.configuration_utils import ContinuousBatchingConfig

        gen = GenerationConfig(do_sample=self.do_sample, max_new_tokens=1024, top_p=None, top_k=None,
                               temperature=_PLACEHOLDER_TEMPERATURE if self.do_sample else None,
                               eos_token_id=-1, pad_token_id=0)
        from backend.engines.constraints import ConstraintMasks

        # Synchronous steps: a constraint's mask depends on the token just sampled (async batching, which
        # transformers turns on only with CUDA graphs, prepares a step before that token is known).
        cb = ContinuousBatchingConfig(per_request_processors=True, scheduler_type=self._scheduler,
                                      use_async_batching=False, **self._cb_args)
        self._masks = ConstraintMasks()  # structured output: per-request masks (a new manager, a new one)
        self.model._get_logits_processor = self._with_extra_processors(self._masks)  # instance attribute
        try:
            manager = self.model.init_continuous_batching(generation_config=gen, continuous_batching_config=cb)
        finally:
            vars(self.model).pop("_get_logits_processor", None)
        ConstraintMasks.reserve(manager.logit_processor)
        manager.start()
        return manager

    def _ensure_running(self) -> None:
        """Restart the manager if a fatal error stopped it (its requests were already failed)."""
        if self.manager.is_running() or self._closing:
            return
        self.manager_restarts += 1
        log.error("continuous batching manager stopped; starting a new one (restart %d)", self.manager_restarts)
        try:
            self.manager.stop(block=True, timeout=5)  # frees its cache before the new one is made
        except Exception:  # the old one is dead anyway
            log.exception("stopping the dead manager failed")
        self.manager = self._new_manager()

    def _stop_manager(self, timeout: float) -> None:
        """Stop the manager's loop for good (which also gives the model back its attention setting)
        without transformers' warning in the app's log: stopping before the loop has built its batch
        processor warns, so a loop just started gets time to finish setting up."""
        deadline = time.monotonic() + LOOP_START_WAIT_S
        while self.manager.batch_processor is None and self.manager.is_running() and time.monotonic() < deadline:
            time.sleep(0.01)  # closed right after start (e.g. the app killed as it came up)
        if self.manager.batch_processor is None and not self.manager.is_running():
            return  # the loop died before it built anything: nothing to stop
        self.manager.stop(block=True, timeout=timeout)

    def _cancel(self, rid: str) -> None:
        self._forget(rid)
        self.manager.cancel_request(rid)  # the scheduler frees its blocks before the next step

    def _forget(self, rid: str) -> TokenStream | None:
        self._masks.forget(rid)
        with self._lock:
            self._stop_ids.pop(rid, None)
            return self._streams.pop(rid, None)

    def _route(self) -> None:
        while not self._closing:
            try:
                output = self.manager.get_result(timeout=ROUTER_POLL_S)
            except Exception:
                log.exception("reading from the continuous batching manager failed")
                output = None
            if output is None:
                if not self.manager.is_running():
                    time.sleep(ROUTER_POLL_S)  # get_result returns at once when the loop is down
                continue
            self._deliver(output)

    def _deliver(self, output) -> None:
        with self._lock:
            stream = self._streams.get(output.request_id)
            stops = self._stop_ids.get(output.request_id, set())
        if stream is None:
            return  # cancelled: late outputs are dropped
        tokens = output.generated_tokens
        stream.push(tokens[stream.n_tokens:])
        if not output.is_finished():
            return
        self._forget(output.request_id)
        if output.error:
            stream.close(StopReason.ERROR, output.error)
        elif tokens and tokens[-1] in stops:
            stream.close(StopReason.STOP_ID)
        else:
            stream.close(StopReason.LENGTH)

"""The one place that chooses the engine: the configured model, a server, or the demo model.

`choose_engine` is what the app calls; `make_engine` builds the engine a config names. Only
the *default* model falls back (no GPU that can hold it, or no network to fetch it); a model
the user named explicitly that fails to load is an error.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

from backend.engines.base import Engine
from core.config import Config
from core.errors import ModelLoadError

log = logging.getLogger(__name__)

MIN_GPU_GB = 15.0  # gpt-oss-20b in MXFP4 needs about 16 GB of GPU memory
HOW_TO_RUN_REAL = ("To run gpt-oss-20b, start the app on a machine with a 16 GB+ NVIDIA GPU; without "
                   "internet there, download the weights elsewhere (`hf download openai/gpt-oss-20b`) and "
                   "start with `--model <folder>`.")


def default_model_blocker() -> str | None:
    """Why the default model cannot run on this machine, or None if it may."""
    import torch

    if not torch.cuda.is_available():
        return "this machine has no CUDA GPU"
    gb = max(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())) / 2**30
    if gb < MIN_GPU_GB:
        return f"the largest GPU here has {gb:.0f} GB and gpt-oss-20b needs about 16 GB"
    return None


def choose_engine(config: Config, codec, progress: Callable) -> Engine:
    """The engine to serve with; falls back to the demo model for an unusable default model."""
    if config.demo:
        return _demo_engine(config, codec, progress, "you asked for it (--demo)")
    if config.model_explicit or config.engine != "transformers":
        return make_engine(config, codec, progress)
    reason = default_model_blocker()
    if reason is None:
        try:
            return make_engine(config, codec, progress)
        except ModelLoadError as exc:
            reason = f"the default model could not be loaded ({exc.user_message})"
    log.warning("falling back to the demo model: %s", reason)
    return _demo_engine(config, codec, progress, reason)


def _demo_engine(config: Config, codec, progress: Callable, reason: str):
    from backend.demo.model import ensure_built

    folder = ensure_built(config.data_path / "demo-model", codec, progress)
    engine = make_engine(replace(config, model=str(folder), quantization="auto", engine="transformers"), codec,
                         progress)
    engine.description = engine.description.with_(
        model="demo model (tiny GptOss, bundled)", demo=True,
        notice=(f"This is the bundled demo model, not gpt-oss: {reason}. It does toy tasks the way gpt-oss "
                "works, with its python tool (sums, differences, sorting a few numbers, counting letters; unit "
                "conversions), e.g. “What is 17 + 25?”. " + HOW_TO_RUN_REAL))
    return engine


def engine_in_child(config: Config, progress: Callable) -> Engine:
    """What a ProcessEngine's child runs: the same choice as in the app's process, with its own codec."""
    from backend.harmony.codec import HarmonyCodec
    from backend.harmony.vocab import load_encoding

    return choose_engine(config, HarmonyCodec(load_encoding(config.data_path / "vocab")), progress)


def build_engine_for(config: Config, codec) -> Callable[[Callable], Engine]:
    """The app's engine builder: the in-process model runs in a child process of its own unless
    `model_in_app_process` (an inference server is only network I/O: it stays in the app)."""
    if config.engine == "transformers" and not config.model_in_app_process:
        from functools import partial

        from backend.engines.process import ProcessEngine

        return lambda progress: ProcessEngine(partial(engine_in_child, config), progress)
    return lambda progress: choose_engine(config, codec, progress)


def make_engine(config: Config, codec, progress: Callable[[str, float | None], None] | None = None) -> Engine:
    """Build the engine the config names (no fallback)."""
    if config.engine == "transformers":
        from backend.engines.transformers_engine import TransformersEngine

        return TransformersEngine.from_config(config, progress=progress)
    if config.engine == "openai":
        from backend.engines.openai_engine import OpenAIEngine
        from backend.harmony.bridge import DeltaWriter

        engine = OpenAIEngine(config.base_url, api=config.server_api, api_key=config.api_key,
                              model=config.served_model, timeout_s=config.server_timeout_s,
                              delta_writer=lambda: DeltaWriter(codec.encoding), probe_ids=[codec.start_id])
        return engine.connect(progress, wait_s=config.server_wait_s)
    raise ValueError(f"unknown engine {config.engine!r} (choose: transformers, openai)")

"""Start the app in this process for the benches (tiny forced model or the demo model)."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from backend.engines.base import EngineInfo
from testkit.net import free_port

ROOT = Path(__file__).resolve().parent.parent  # where `python -c` children find the project

LONG_ANSWER = ("<|channel|>analysis<|message|>" + "Thinking about the question in some detail. " * 60 + "<|end|>"
               "<|start|>assistant<|channel|>final<|message|>" + "Here is a long answer sentence. " * 30
               + "<|return|>")


def run_together(fn, args_list: list[tuple]) -> float:
    """Run fn(*args) for every args at once, each on its own thread; the wall time until all end."""
    threads = [threading.Thread(target=fn, args=args) for args in args_list]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


class App:
    """The real app (create + launch) around an engine built by `make_engine(codec, data_dir)`, or with
    `make_engine=None` the engine `python app.py` would choose for the config."""

    def __init__(self, make_engine, **config_kwargs):
        import app as app_module
        from backend.harmony.codec import HarmonyCodec
        from backend.harmony.vocab import load_encoding
        from core.config import Config

        self.data = Path(tempfile.mkdtemp())
        self.codec = HarmonyCodec(load_encoding(self.data / "vocab"))
        config = Config(data_dir=str(self.data), port=free_port(), max_new_tokens=2000, **config_kwargs)
        build = (lambda progress: make_engine(self.codec, self.data)) if make_engine else None  # None: as `main`
        parts = app_module.create(config, build_engine=build)
        self.parts, self.demo, self.host, self.service = parts, parts.demo, parts.host, parts.service
        app_module.launch(parts, prevent_thread_lock=True, quiet=True)
        while self.host.status().state == "loading":
            time.sleep(0.1)
        if self.host.status().state != "ready":
            raise RuntimeError(self.host.status().error)
        self.url = f"http://127.0.0.1:{config.port}/"

    def close(self) -> None:
        self.demo.close()
        self.host.close()


def forced_engine(text: str = LONG_ANSWER):
    """Tiny GptOss made to write `text` (harmony) through continuous batching."""
    def make(codec, data):
        from backend.engines.loader import load_model
        from backend.engines.transformers_engine import TransformersEngine
        from testkit.forcing import ForceSequence
        from testkit.tiny_model import build_tiny_checkpoint

        model = load_model(str(build_tiny_checkpoint(data / "tiny"))).model
        ids = codec.encoding.encode(text, allowed_special="all")
        return TransformersEngine(model, do_sample=False, logits_processors=[ForceSequence(ids)],
                                  description=EngineInfo(model="tiny (forced)"))
    return make


def demo_engine(codec, data, scheduler: str | None = None):
    from backend.demo.model import ensure_built
    from backend.engines.loader import load_model
    from backend.engines.transformers_engine import TransformersEngine

    folder = ensure_built(data / "demo-model", codec, lambda s, f: None)
    return TransformersEngine(load_model(str(folder)).model, seed=0, description=EngineInfo(model="demo"),
                              scheduler=scheduler)

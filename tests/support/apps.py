"""The real app (create + launch) for a test that needs its own engine or settings: started, waited on until
the model is no longer loading, closed afterwards (MCP servers too)."""

from __future__ import annotations

import time
from contextlib import contextmanager


@contextmanager
def running_app(config, build_engine=None, wait_s: float = 300):
    """`build_engine` None: the engine `python app.py` would choose for `config`."""
    import app as app_module

    parts = app_module.create(config, build_engine=build_engine)
    app_module.launch(parts, prevent_thread_lock=True, quiet=True)
    try:
        deadline = time.monotonic() + wait_s
        while parts.host.status().state == "loading" and time.monotonic() < deadline:
            time.sleep(0.1)
        yield parts
    finally:
        parts.demo.close()
        parts.host.close()
        parts.service.toolbox.close()


def synthetic_app(tmp_path, encoding, rate: float, **settings):
    """(config, app): the real app on bench/synthetic.py's engine (one harmony completion of ~300 tokens
    at `rate` tokens/s per stream, many streams at once), for steps that need an answer to take seconds."""
    from bench.synthetic import EmissionLog, SyntheticEngine
    from core.config import Config
    from testkit.net import free_port

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=2000, **settings)
    log = EmissionLog(tmp_path / "emit.jsonl")
    return config, running_app(config, build_engine=lambda progress: SyntheticEngine(encoding, rate, log))

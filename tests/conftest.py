"""Shared fixtures: the offline harmony codec and a tiny GptOss checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub

from backend.engines.base import EngineInfo
from testkit.net import free_port
from testkit.tiny_model import build_tiny_checkpoint


@pytest.fixture
def url(tmp_path):
    """A fresh SQLite database."""
    return f"sqlite:///{tmp_path / 'chat.db'}"


@pytest.fixture
def repo(url):
    from storage.repository import Repository

    return Repository.open(url)


@pytest.fixture(scope="session")
def codec(tmp_path_factory):
    from backend.harmony.codec import HarmonyCodec
    from backend.harmony.vocab import load_encoding

    return HarmonyCodec(load_encoding(tmp_path_factory.mktemp("vocab")))


@pytest.fixture(scope="session")
def encoding(codec):
    return codec.encoding


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-gpt-oss"))


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    from backend.engines.loader import load_model

    return load_model(str(tiny_checkpoint), "auto", "auto").model


FORCED_CHAT = ("<|channel|>analysis<|message|>The user says hi. " + "Let me think. " * 60 + "<|end|>"
               "<|start|>assistant<|channel|>final<|message|>Hello! <b>How</b> can I help?<|return|>")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, one per test module (skipped where there is none)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from testkit.page import CHROMIUM, launch

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def forced_engine(codec, tiny_model):
    """build_engine(progress) functions: the tiny model forced to speak `text` in harmony. They go
    where the app takes its engine (ModelHost, app.create), so nothing is patched."""
    from backend.engines.transformers_engine import TransformersEngine
    from testkit.forcing import ForceSequence

    def factory(text=FORCED_CHAT, *then, num_blocks=None):
        """`then`: what later generations of a turn say (after each tool call), in order. `num_blocks`:
        the continuous-batching cache's size (blocks of 256 tokens), where a test needs a small one."""
        ids = [codec.encoding.encode(t, allowed_special="all") for t in (text, *then)]

        def build(progress):
            progress("Loading weights of tiny", None)
            return TransformersEngine(tiny_model, do_sample=False, logits_processors=[ForceSequence(*ids)],
                                      num_blocks=num_blocks,
                                      description=EngineInfo(model="tiny-test", quantization="float32",
                                                             engine="transformers (continuous batching)"))
        return build
    return factory


@pytest.fixture
def start_host(codec):
    """start(build_engine, **worker_kwargs): a started ModelHost over an engine builder, closed after the test."""
    from backend.serving.host import ModelHost

    hosts = []

    def start(build_engine, **worker_kwargs):
        host = ModelHost(build_engine, codec, worker_kwargs)
        host.start(background=False)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.close()


@pytest.fixture
def make_host(forced_engine, start_host):
    """A started ModelHost over the forced tiny model."""
    return lambda text=FORCED_CHAT, *then, **worker_kwargs: start_host(forced_engine(text, *then), **worker_kwargs)


@pytest.fixture
def demo_app(tmp_path):
    """The real app on the bundled demo model (no forcing), with its python tool in the sandbox."""
    import app as app_module
    from core.config import Config

    config = Config(data_dir=str(tmp_path), port=free_port(), demo=True, model_in_app_process=True)
    parts = app_module.create(config)
    app_module.launch(parts, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{config.port}/"
    parts.demo.close()
    parts.host.close()


@pytest.fixture
def launched(forced_engine):
    """launch(config, **create_kwargs): the real app (create + launch) on the forced tiny model."""
    import app as app_module

    apps = []

    def launch(config, text=FORCED_CHAT, then=()):
        parts = app_module.create(config, build_engine=forced_engine(text, *then))
        app_module.launch(parts, prevent_thread_lock=True, quiet=True)
        apps.append(parts)
        return parts

    yield launch
    for parts in apps:
        parts.demo.close()
        parts.host.close()
        parts.service.toolbox.close()  # MCP servers of the app's --mcp-config


@pytest.fixture
def app_url(tmp_path, launched):
    from core.config import Config

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, max_active=4, max_waiting=4)
    parts = launched(config)
    yield f"http://127.0.0.1:{config.port}/", parts.service


@pytest.fixture
def two_user_app(tmp_path, launched):
    from backend.identity.users import add_user
    from core.config import Config

    users = tmp_path / "users.json"
    add_user(users, "alice", "alice-password", iterations=1000)
    add_user(users, "bob", "bob-password", iterations=1000)
    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400)
    launched(config)  # users.json in the data dir: password login is on
    yield f"http://127.0.0.1:{config.port}/"


@pytest.fixture
def server():
    """A replay server that lists one model at /v1/models, like any OpenAI-compatible server."""
    from tests.support.replay_server import ReplayServer, Reply

    s = ReplayServer()
    s.route("/v1/models", Reply(['{"object":"list","data":[{"id":"openai/gpt-oss-20b","object":"model"}]}'],
                                content_type="application/json"))
    yield s
    s.close()

"""Shared fixtures: the offline harmony codec and a tiny GptOss checkpoint."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub

from tests.support.tiny_model import build_tiny_checkpoint


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


@pytest.fixture
def make_host(codec, tiny_model):
    """A ModelHost over the tiny model forced to speak `text` in harmony."""
    from backend.engines.transformers_engine import TransformersEngine
    from backend.host import ModelHost
    from tests.support.forcing import ForceSequence

    hosts = []

    def make(text=FORCED_CHAT, start=True, **worker_kwargs):
        ids = codec.encoding.encode(text, allowed_special="all")

        def build(progress):
            progress("Loading weights of tiny", None)
            return TransformersEngine(tiny_model, do_sample=False, logits_processors=[ForceSequence(ids)],
                                      description={"model": "tiny-test", "quantization": "float32",
                                                   "engine": "transformers (continuous batching)"})
        host = ModelHost(build, codec, worker_kwargs)
        if start:
            host.start(background=False)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(tmp_path, make_host, monkeypatch):
    import app as app_module
    from core.config import Config

    host = make_host(start=False)  # create() starts it
    monkeypatch.setattr(app_module, "ModelHost", lambda *a, **k: host)  # reuse the forced tiny host
    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, max_active=4, max_waiting=4)
    parts = app_module.create(config)
    app_module.launch(parts, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{config.port}/", parts.service
    parts.demo.close()


@pytest.fixture
def two_user_app(tmp_path, make_host, monkeypatch):
    import app as app_module
    from backend.users import add_user
    from core.config import Config

    users = tmp_path / "users.json"
    add_user(users, "alice", "alice-password", iterations=1000)
    add_user(users, "bob", "bob-password", iterations=1000)
    host = make_host(start=False)
    monkeypatch.setattr(app_module, "ModelHost", lambda *a, **k: host)
    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400)
    parts = app_module.create(config)  # users.json in the data dir: password login is on
    app_module.launch(parts, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{config.port}/"
    parts.demo.close()

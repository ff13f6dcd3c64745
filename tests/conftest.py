"""Shared fixtures: the offline harmony codec and a tiny GptOss checkpoint."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub

from tests.tiny_model import build_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def codec(tmp_path_factory):
    from backend.harmony import HarmonyCodec
    from backend.vocab import load_encoding

    return HarmonyCodec(load_encoding(tmp_path_factory.mktemp("vocab")))


@pytest.fixture(scope="session")
def encoding(codec):
    return codec.encoding


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-gpt-oss"))


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    from backend.loader import load_model

    return load_model(str(tiny_checkpoint), "auto", "auto").model

"""The models the benches load: gpt-oss-20b's shape with random weights (on a GPU) and the tiny test
checkpoint. Apart from bench/worker.py so that bench/synthetic.py can use them without a circle."""

from __future__ import annotations

import tempfile
from pathlib import Path


def build_20b():
    """The published gpt-oss-20b dimensions with random bf16 weights, built on the GPU.

    `from_config` builds in the config's dtype from the start (a float32 build would need 84 GB
    before a cast to bf16)."""
    import torch
    from transformers import AutoModelForCausalLM, GptOssConfig

    config = GptOssConfig(num_hidden_layers=24, num_local_experts=32, hidden_size=2880,
                          intermediate_size=2880, num_attention_heads=64, num_key_value_heads=8,
                          head_dim=64, vocab_size=201088, dtype="bfloat16")
    with torch.device("cuda"):
        return AutoModelForCausalLM.from_config(config).eval()


def build_tiny():
    from backend.engines.loader import load_model
    from testkit.tiny_model import build_tiny_checkpoint

    folder = build_tiny_checkpoint(Path(tempfile.mkdtemp()) / "tiny")
    return load_model(str(folder), "auto", "auto").model

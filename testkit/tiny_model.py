"""Build a tiny GptOss checkpoint (real vocab size, tiny width) for tests and benches."""

from __future__ import annotations

from pathlib import Path

VOCAB_SIZE = 201088  # the real o200k_harmony vocabulary size


def build_tiny_checkpoint(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import GptOssConfig, GptOssForCausalLM

    torch.manual_seed(seed)
    config = GptOssConfig(
        vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_local_experts=4,
        num_experts_per_tok=2, sliding_window=128,
        layer_types=["sliding_attention", "full_attention"], dtype="float32",
        eos_token_id=200002, pad_token_id=199999,
    )
    model = GptOssForCausalLM(config)
    model.save_pretrained(folder)
    return folder

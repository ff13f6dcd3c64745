"""Write a GptOss checkpoint in the layout OpenAI published gpt-oss in: MXFP4 experts, the rest bf16.

The published `openai/gpt-oss-20b` and `-120b` (their model.safetensors.index.json and config.json,
and transformers' own convert_gpt_oss_weights_to_hf.py, which wrote them) store each layer's experts as

    model.layers.N.mlp.experts.gate_up_proj_blocks  uint8 [experts, 2 * intermediate, hidden / 32, 16]
    model.layers.N.mlp.experts.gate_up_proj_scales  uint8 [experts, 2 * intermediate, hidden / 32]
    model.layers.N.mlp.experts.gate_up_proj_bias    bf16  [experts, 2 * intermediate]
    model.layers.N.mlp.experts.down_proj_blocks     uint8 [experts, hidden, intermediate / 32, 16]
    model.layers.N.mlp.experts.down_proj_scales     uint8 [experts, hidden, intermediate / 32]
    model.layers.N.mlp.experts.down_proj_bias       bf16  [experts, hidden]

that is, transformers' `gate_up_proj` [experts, hidden, 2 * intermediate] and `down_proj`
[experts, intermediate, hidden] transposed to [experts, out, in], the `in` axis cut into blocks of 32.
MXFP4 (OCP Microscaling, FP4 E2M1 elements): each block of 32 values shares one power-of-two scale,
stored as its exponent + 127 (E8M0); each value is 4 bits — a sign bit (8) and one of the eight
magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6 — two per byte, the even element in the low nibble. The config
says `"quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [...]}` as published;
the shards are named and indexed as the conversion script names them.

The encoder is written here from that definition, not taken from a library: the tests read it back with
transformers' own dequantization, which is what would notice a change of layout in a new release.
"""

from __future__ import annotations

import json
from pathlib import Path

PUBLISHED_QUANTIZATION = {
    "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens",
                               "lm_head"],
    "quant_method": "mxfp4",
}
MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # FP4 E2M1; code 8 + i is the negative
BLOCK = 32
EXPERT_WEIGHTS = ("gate_up_proj", "down_proj")


def encode_mxfp4(values):
    """[..., K] floats -> (blocks uint8 [..., K/32, 16], scales uint8 [..., K/32]).

    Each block's scale is the smallest power of two that brings its largest magnitude within 6 (the
    largest FP4 value); each value is then rounded to the nearest FP4 value (ties to the smaller)."""
    import torch

    *prefix, k = values.shape
    if k % BLOCK:
        raise ValueError(f"the last axis ({k}) must be a multiple of {BLOCK}")
    x = values.detach().float().reshape(*prefix, k // BLOCK, BLOCK)
    largest = x.abs().amax(dim=-1)
    exponent = torch.where(largest > 0, torch.ceil(torch.log2(largest / 6.0)), torch.full_like(largest, -127.0))
    exponent = exponent.clamp(-127, 127)
    scaled = x / torch.exp2(exponent).unsqueeze(-1)
    table = torch.tensor(MAGNITUDES)
    index = (scaled.abs().unsqueeze(-1) - table).abs().argmin(dim=-1)  # the nearest magnitude
    codes = (index | ((scaled < 0).long() << 3)).to(torch.uint8)
    blocks = codes[..., 0::2] | (codes[..., 1::2] << 4)
    return blocks.contiguous(), (exponent + 127).to(torch.uint8)


def decode_mxfp4(blocks, scales):
    """The inverse, written from the same definition: [..., G, 16] + [..., G] -> [..., G * 32] float32."""
    import torch

    values = torch.tensor(MAGNITUDES + tuple(-m for m in MAGNITUDES))
    low, high = values[(blocks & 0x0F).long()], values[(blocks >> 4).long()]
    pairs = torch.stack([low, high], dim=-1).flatten(-2)  # even element from the low nibble
    out = pairs * torch.exp2(scales.float() - 127).unsqueeze(-1)
    return out.flatten(-2)


def mxfp4_state_dict(model) -> dict:
    """The model's weights as the published checkpoints store them (experts MXFP4, the rest bf16)."""
    import torch

    state = {}
    for name, tensor in model.state_dict().items():
        proj = name.rsplit(".", 1)[-1]
        if ".mlp.experts." in name and proj in EXPERT_WEIGHTS:
            blocks, scales = encode_mxfp4(tensor.transpose(1, 2))  # [experts, out, in]
            state[f"{name}_blocks"], state[f"{name}_scales"] = blocks, scales
        else:
            state[name] = tensor.detach().to(torch.bfloat16).contiguous()
    return state


def dequantized_twin(model):
    """The same model with its experts replaced by what the MXFP4 checkpoint holds (decoded here), in
    bf16: what a correct loader must produce from it, exactly."""
    import copy

    import torch

    source = dict(model.named_parameters())  # encoded from these, as mxfp4_state_dict does
    twin = copy.deepcopy(model).to(torch.bfloat16)
    with torch.no_grad():
        for name, param in twin.named_parameters():
            if ".mlp.experts." in name and name.rsplit(".", 1)[-1] in EXPERT_WEIGHTS:
                blocks, scales = encode_mxfp4(source[name].transpose(1, 2))
                param.copy_(decode_mxfp4(blocks, scales).transpose(1, 2).to(torch.bfloat16))
    return twin


def write_mxfp4_checkpoint(model, folder: Path, shards: int = 2) -> Path:
    """Save `model` (a GptOssForCausalLM) to `folder` in the published MXFP4 layout."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    config.update(quantization_config=PUBLISHED_QUANTIZATION, dtype="bfloat16", architectures=["GptOssForCausalLM"])
    config.pop("torch_dtype", None)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    state = mxfp4_state_dict(model)
    names = list(state)
    per_shard = -(-len(names) // shards)
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())}, "weight_map": {}}
    for shard in range(shards):
        file = f"model-{shard:05d}-of-{shards - 1:05d}.safetensors"  # as the conversion script names them
        part = {n: state[n] for n in names[shard * per_shard:(shard + 1) * per_shard]}
        save_file(part, str(folder / file), metadata={"format": "pt"})
        index["weight_map"].update({n: file for n in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return folder

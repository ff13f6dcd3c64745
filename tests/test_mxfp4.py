"""The published MXFP4 layout, proven offline: a tiny gpt-oss written the way openai/gpt-oss-20b is
(testkit/mxfp4.py, an encoder written from the format's definition) loads through the app's own path
(`load_model`, the same from_pretrained call), is read back exactly by transformers' dequantization, and
the app answers with it. A transformers release that changes the layout's handling fails here."""

import pytest

from backend.engines.loader import load_model, mxfp4_kernels_available
from core.errors import ModelLoadError


def test_the_mxfp4_encoder_on_known_values():
    import torch

    from testkit.mxfp4 import decode_mxfp4, encode_mxfp4

    values = torch.tensor([[6.0, -6.0, 0.5, -0.5, 1.5, 3.0, 0.0, 4.0] * 4, [12.0, -0.25] + [0.0] * 30])
    blocks, scales = encode_mxfp4(values)
    assert blocks.shape == (2, 1, 16) and blocks.dtype == torch.uint8 and scales.dtype == torch.uint8
    assert scales.tolist() == [[127], [128]]  # 2^0; 12 needs 2^1 (12 / 2 = 6, the largest FP4 value)
    assert blocks[0, 0, :4].tolist() == [7 | 15 << 4, 1 | 9 << 4, 3 | 5 << 4, 0 | 6 << 4]  # low nibble first
    assert decode_mxfp4(blocks, scales)[0].tolist() == values[0].tolist()
    assert decode_mxfp4(blocks, scales)[1, :2].tolist() == [12.0, -0.0]  # -0.25/2 rounds to the nearest: -0


def test_transformers_reads_the_blocks_as_the_format_says():
    """transformers' own dequantization (what loading uses) gives back what the encoder meant."""
    import torch
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    from testkit.mxfp4 import decode_mxfp4, encode_mxfp4

    weights = torch.randn(3, 96, 64)  # [experts, out, in]
    blocks, scales = encode_mxfp4(weights)
    assert blocks.shape == (3, 96, 2, 16) and scales.shape == (3, 96, 2)
    theirs = convert_moe_packed_tensors(blocks, scales, dtype=torch.float32)  # [experts, in, out]
    assert torch.equal(theirs.transpose(1, 2), decode_mxfp4(blocks, scales))
    error = ((decode_mxfp4(blocks, scales) - weights).norm() / weights.norm()).item()
    assert error < 0.15  # FP4's one mantissa bit: ~11 % on Gaussian weights


@pytest.fixture(scope="module")
def mxfp4_checkpoint(tiny_checkpoint, tmp_path_factory):
    from transformers import GptOssForCausalLM

    from testkit.mxfp4 import write_mxfp4_checkpoint

    original = GptOssForCausalLM.from_pretrained(tiny_checkpoint)
    return original, write_mxfp4_checkpoint(original, tmp_path_factory.mktemp("mxfp4") / "tiny-mxfp4")


def test_the_checkpoint_has_the_published_names_shapes_and_config(mxfp4_checkpoint):
    import json

    from safetensors import safe_open

    original, folder = mxfp4_checkpoint
    config = json.loads((folder / "config.json").read_text())
    assert config["quantization_config"] == {"modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"],
        "quant_method": "mxfp4"}
    index = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    e, i, h = original.config.num_local_experts, original.config.intermediate_size, original.config.hidden_size
    expected = {"gate_up_proj_blocks": ("U8", [e, 2 * i, h // 32, 16]), "gate_up_proj_scales": ("U8", [e, 2 * i, h // 32]),
                "gate_up_proj_bias": ("BF16", [e, 2 * i]), "down_proj_blocks": ("U8", [e, h, i // 32, 16]),
                "down_proj_scales": ("U8", [e, h, i // 32]), "down_proj_bias": ("BF16", [e, h])}
    for suffix, (dtype, shape) in expected.items():
        name = f"model.layers.0.mlp.experts.{suffix}"
        with safe_open(str(folder / index[name]), "pt") as f:
            info = f.get_slice(name)
            assert (info.get_dtype(), info.get_shape()) == (dtype, shape), name
    assert "model.layers.0.mlp.experts.gate_up_proj" not in index
    assert {f for f in index.values()} == {"model-00000-of-00001.safetensors", "model-00001-of-00001.safetensors"}


@pytest.mark.parametrize("quantization", ["auto", "bf16"])
def test_an_mxfp4_checkpoint_loads_through_the_apps_path_without_kernels(mxfp4_checkpoint, quantization):
    """No MXFP4 kernels here (CI has no GPU): the experts are dequantized to bf16, exactly the values the
    checkpoint holds, and the logits stay within the quantization's error of the bf16 original."""
    import torch

    from testkit.mxfp4 import dequantized_twin

    if mxfp4_kernels_available()[0]:
        pytest.skip("MXFP4 kernels are available here: the experts stay MXFP4")
    original, folder = mxfp4_checkpoint
    loaded = load_model(str(folder), quantization, "auto")
    why = "no MXFP4 kernels" if quantization == "auto" else "--quantization bf16"
    assert loaded.quantization == f"MXFP4 checkpoint, dequantized to bf16 ({why})"
    assert (loaded.notice is not None and "dequantized to bf16" in loaded.notice) == (quantization == "auto")
    twin = dequantized_twin(original)
    theirs, ours = dict(loaded.model.named_parameters()), dict(twin.named_parameters())
    assert theirs.keys() == ours.keys()
    for name, param in theirs.items():  # every weight exactly what the checkpoint says
        assert param.dtype == torch.bfloat16 and torch.equal(param, ours[name]), name
    ids = torch.tensor([[200006, 1428, 200008, 3086, 382, 220, 1422, 659, 220, 1161, 30]])
    with torch.no_grad():
        got = loaded.model(ids).logits.float()
        reference = original.to(torch.float32)(ids).logits.float()
    error = ((got - reference).norm() / reference.norm()).item()
    print(f"MXFP4 ({quantization}) vs the original's logits: relative error {error:.4f}")
    assert error < 0.2 and (got.argmax(-1) == reference.argmax(-1)).float().mean() > 0.5


def test_bitsandbytes_refuses_the_mxfp4_checkpoint_by_name(mxfp4_checkpoint):
    with pytest.raises(ModelLoadError, match="bitsandbytes cannot re-quantize an MXFP4 checkpoint"):
        load_model(str(mxfp4_checkpoint[1]), "bnb-4bit", "auto")


@pytest.fixture(scope="module")
def demo_mxfp4(tmp_path_factory, codec):
    """The bundled demo model (trained: it answers sums with python) written as an MXFP4 checkpoint."""
    from transformers import GptOssForCausalLM

    from backend.demo.model import ensure_built
    from testkit.mxfp4 import write_mxfp4_checkpoint

    root = tmp_path_factory.mktemp("demo-mxfp4")
    demo = ensure_built(root / "demo", codec, lambda stage, fraction: None)
    return write_mxfp4_checkpoint(GptOssForCausalLM.from_pretrained(demo), root / "demo-mxfp4")


def test_the_app_answers_with_an_mxfp4_checkpoint_and_says_what_ran(demo_mxfp4, tmp_path):
    """`python app.py --model <folder>` on a machine without kernels: the model's own process loads
    it, the banner says what ran, and a chat goes through the worker, continuous batching, harmony
    and the python tool to the right answer."""
    from gradio_client import Client

    from core.config import Config
    from tests.conftest import free_port
    from tests.support.apps import running_app

    if mxfp4_kernels_available()[0]:
        pytest.skip("MXFP4 kernels are available here")
    config = Config(data_dir=str(tmp_path), port=free_port(), model=str(demo_mxfp4), model_explicit=True,
                    max_new_tokens=400)
    with running_app(config):
        client = Client(f"http://127.0.0.1:{config.port}/", verbose=False)
        banner = client.predict(api_name="/status")[0]
        assert "MXFP4 checkpoint, dequantized to bf16 (no MXFP4 kernels)" in banner and "no CUDA GPU" in banner
        chat = client.predict("What is 17 + 25?", None, "medium", "", 0.3, 400, ["python"], "", api_name="/send")[0]
        said = " ".join(str(m["content"]) for m in chat if m["role"] == "assistant")
        assert "The answer is 42." in said and "print(17 + 25)" in said, said[-500:]

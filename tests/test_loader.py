"""Loading through the same from_pretrained path as the real model."""

import pytest

from backend.engines.loader import _quant_kwargs, load_model, mxfp4_kernels_available
from core.errors import ModelLoadError


def test_tiny_checkpoint_loads_through_the_real_path(tiny_checkpoint):
    stages = []
    loaded = load_model(str(tiny_checkpoint), "auto", "auto", progress=lambda s, f: stages.append((s, f)))
    assert type(loaded.model).__name__ == "GptOssForCausalLM"
    assert loaded.model.config.vocab_size == 201088
    assert loaded.quantization == "float32" and loaded.notice is None
    assert stages[-1][1] == 1.0 and any("Loading weights" in s for s, _ in stages)


def test_bf16_option_loads_bf16(tiny_checkpoint):
    assert load_model(str(tiny_checkpoint), "bf16", "auto").quantization == "bfloat16"


def test_unknown_quantization_is_a_clear_error(tiny_checkpoint):
    with pytest.raises(ModelLoadError, match="choose one of auto, bf16"):
        load_model(str(tiny_checkpoint), "fp3", "auto")


def test_unreachable_hub_model_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as err:
        load_model("openai/gpt-oss-20b-does-not-exist-here")
    assert "hf download" in err.value.user_message and "--model" in err.value.user_message


def test_folder_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not a model folder"):
        load_model(str(tmp_path))


def test_mxfp4_without_kernels_falls_back_loudly():
    ok, why = mxfp4_kernels_available()
    kwargs, notice = _quant_kwargs("auto", mxfp4_ckpt=True)
    if ok:
        pytest.skip("MXFP4 kernels are available here")
    assert kwargs["quantization_config"].dequantize is True
    assert why in notice and "bf16" in notice


def test_bitsandbytes_refuses_an_mxfp4_checkpoint():
    with pytest.raises(ModelLoadError, match="bf16 copy"):
        _quant_kwargs("bnb-4bit", mxfp4_ckpt=True)


def test_what_bitsandbytes_quantizes_in_gpt_oss(tiny_checkpoint):
    """The README's finding: bnb replaces nn.Linear only, so GptOss experts stay full size."""
    pytest.importorskip("bitsandbytes")
    loaded = load_model(str(tiny_checkpoint), "bnb-8bit", "cpu")
    quantized = {n for n, p in loaded.model.named_parameters() if p.dtype == torch_int8()}
    assert quantized and all(".self_attn." in n for n in quantized)
    assert all(p.dtype.is_floating_point for n, p in loaded.model.named_parameters() if ".experts." in n)


def torch_int8():
    import torch

    return torch.int8

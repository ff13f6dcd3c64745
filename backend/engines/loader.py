"""Load a gpt-oss checkpoint (hub id or local folder) with transformers.

The same code loads openai/gpt-oss-20b, gpt-oss-120b and the tiny test model,
so the tests exercise the real path. Failures become ModelLoadError with what
failed and what to do; progress goes to a callback the page shows.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.errors import ModelLoadError

log = logging.getLogger(__name__)

QUANTIZATIONS = ("auto", "bf16", "bnb-4bit", "bnb-8bit")
# The gpt-oss repos also carry the original and Metal weights; we need neither.
IGNORE_PATTERNS = ["original/*", "metal/*"]

Progress = Callable[[str, "float | None"], None]


@dataclass
class LoadedModel:
    model: object
    path: str
    quantization: str  # what actually runs: mxfp4, bf16 (dequantized), bnb-4bit, float32 …
    notice: str | None = None  # a loud warning the page shows (e.g. a silent bf16 fallback)


def _noop(stage: str, fraction: float | None) -> None:
    pass


def mxfp4_kernels_available() -> tuple[bool, str]:
    """Whether transformers can run MXFP4 experts here, and if not, why."""
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA GPU"
    if importlib.util.find_spec("kernels") is None:
        return False, "the `kernels` package is not installed"
    if importlib.util.find_spec("triton") is None:
        return False, "triton is not installed"
    import triton

    major, minor = (int(x) for x in triton.__version__.split(".")[:2])
    if (major, minor) < (3, 4):
        return False, f"triton {triton.__version__} is older than 3.4"
    return True, ""


def _download(model_id: str, progress: Progress) -> str:
    """Fetch a hub repo into the local cache, reporting progress per file."""
    from huggingface_hub import snapshot_download
    from tqdm.auto import tqdm

    class _Bar(tqdm):  # huggingface_hub reports file progress through tqdm
        def update(self, n=1):
            out = super().update(n)
            if self.total:
                progress(f"Downloading {model_id}", min(1.0, self.n / self.total))
            return out

    progress(f"Downloading {model_id}", 0.0)
    try:
        return snapshot_download(model_id, ignore_patterns=IGNORE_PATTERNS, tqdm_class=_Bar)
    except Exception as exc:  # network, auth, missing repo: all end here
        raise ModelLoadError(
            f"Could not download the model '{model_id}': {type(exc).__name__}: {exc}. "
            "If this machine has no internet, download it elsewhere "
            f"(`hf download {model_id}`), copy the folder here and start with --model <folder>."
        ) from exc


def _is_mxfp4_checkpoint(config) -> bool:
    qc = getattr(config, "quantization_config", None)
    method = qc.get("quant_method") if isinstance(qc, dict) else getattr(qc, "quant_method", None)
    return str(method).lower().endswith("mxfp4")


def _quant_kwargs(quantization: str, mxfp4_ckpt: bool) -> tuple[dict, str | None]:
    """from_pretrained kwargs for the chosen quantization, plus a notice if degraded."""
    import torch

    if quantization not in QUANTIZATIONS:
        raise ModelLoadError(f"Unknown quantization '{quantization}'; choose one of {', '.join(QUANTIZATIONS)}.")
    if quantization in ("bnb-4bit", "bnb-8bit"):
        if mxfp4_ckpt:
            raise ModelLoadError(
                "bitsandbytes cannot re-quantize an MXFP4 checkpoint. Use a bf16 copy of the model "
                "(e.g. a '-BF16' repo) with --quantization bnb-4bit, or --quantization auto."
            )
        from transformers import BitsAndBytesConfig

        bits = {"bnb-4bit": dict(load_in_4bit=True), "bnb-8bit": dict(load_in_8bit=True)}[quantization]
        return {"quantization_config": BitsAndBytesConfig(**bits)}, None
    if not mxfp4_ckpt:
        return ({"dtype": torch.bfloat16} if quantization == "bf16" else {"dtype": "auto"}), None
    from transformers import Mxfp4Config

    if quantization == "bf16":
        return {"dtype": torch.bfloat16, "quantization_config": Mxfp4Config(dequantize=True)}, None
    ok, why = mxfp4_kernels_available()
    if ok:
        return {"dtype": "auto"}, None
    notice = (
        f"MXFP4 kernels are unavailable ({why}): the experts were dequantized to bf16, "
        "which needs about 3.8x their memory and runs slower. Install triton>=3.4 and "
        "`kernels` on a Hopper/Blackwell GPU for MXFP4."
    )
    return {"dtype": torch.bfloat16, "quantization_config": Mxfp4Config(dequantize=True)}, notice


def _describe(model, mxfp4_checkpoint: bool = False, asked: str = "auto") -> str:
    """What quantization actually ended up in memory (checked, not assumed); for an MXFP4 checkpoint
    whose experts were dequantized, that and why ("no kernels": the page says so beside the notice)."""
    dtypes = {str(p.dtype).replace("torch.", "") for p in model.parameters()}
    if mxfp4_checkpoint and "uint8" not in dtypes:
        why = "--quantization bf16" if asked == "bf16" else "no MXFP4 kernels"
        return f"MXFP4 checkpoint, dequantized to bf16 ({why})"
    if "uint8" in dtypes:
        qc = getattr(model.config, "quantization_config", None)
        method = getattr(qc, "quant_method", None) or (qc or {}).get("quant_method", "")
        return "mxfp4" if "mxfp4" in str(method).lower() else f"{method or 'int'}"
    floats = sorted(d for d in dtypes if d.startswith(("float", "bfloat")))
    return "/".join(floats) or ",".join(sorted(dtypes))


def load_model(model_id: str, quantization: str = "auto", device_map: str | None = "auto",
               progress: Progress | None = None) -> LoadedModel:
    """Load a GptOss (or any causal LM) checkpoint; raise ModelLoadError with advice."""
    progress = progress or _noop
    from transformers import AutoConfig, AutoModelForCausalLM

    path = model_id if Path(model_id).is_dir() else _download(model_id, progress)
    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as exc:
        raise ModelLoadError(f"'{model_id}' is not a model folder transformers can read: {exc}") from exc
    mxfp4 = _is_mxfp4_checkpoint(config)
    kwargs, notice = _quant_kwargs(quantization, mxfp4)
    progress(f"Loading weights of {model_id}", None)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, device_map=device_map, **kwargs)
    except Exception as exc:
        raise ModelLoadError(_load_failure_message(model_id, exc)) from exc
    model.eval()
    if notice:
        log.warning("%s", notice)
    progress(f"Loaded {model_id}", 1.0)
    return LoadedModel(model=model, path=str(path), quantization=_describe(model, mxfp4, quantization), notice=notice)


def _load_failure_message(model_id: str, exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if "out of memory" in text.lower() or "OutOfMemory" in text:
        return (f"Not enough GPU memory to load '{model_id}' ({text}). gpt-oss-20b needs about 16 GB "
                "with MXFP4 and about 48 GB in bf16; try a bigger GPU or --engine openai with a server.")
    return f"Could not load '{model_id}': {text}"

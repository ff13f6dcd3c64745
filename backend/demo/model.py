"""The demo model at run time: the committed small weights (weights.safetensors), expanded into a
full-vocabulary GptOss folder that the app loads like any checkpoint. Training them is lab/train.py's
job (python -m lab.train --train); the app never trains.

The small model has a softmax over only the ids its corpus used (K of them) plus one extra logit
fixed at log(201,088 - K) for all the others. Copying the trained rows into a full-size GptOss whose
other rows are zero gives exactly the same distribution: every unused id then has logit 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, NamedTuple

from backend.harmony.codec import HarmonyCodec

FULL_VOCAB = 201088


class SpecialIds(NamedTuple):
    """The harmony ids the demo build needs, read from the encoding (never typed in)."""

    ret: int  # <|return|>: end of a final answer
    call: int  # <|call|>: end of a tool call
    pad: int  # <|endoftext|>
    bos: int  # <|startoftext|>

    @classmethod
    def of(cls, codec: HarmonyCodec) -> "SpecialIds":
        return cls(codec.return_id, codec.call_id, codec.special_id("<|endoftext|>"),
                   codec.special_id("<|startoftext|>"))

BUILD_VERSION = 9  # bump when the recipe or the weights change, so cached builds are rebuilt


def tiny_config(vocab: int, hidden: int, layers: int, experts: int, ids: SpecialIds,
                 index: dict[int, int] | None = None, heads: int = 4):
    """The demo architecture. `index` maps full ids to a small vocabulary's rows (training, artifact):
    its special ids then point at those rows, or at nothing, so the config stays inside its vocabulary."""
    from transformers import GptOssConfig

    named = {"pad": ids.pad, "eos": ids.ret, "bos": ids.bos}
    special = {name: i if index is None else index.get(i) for name, i in named.items()}
    return GptOssConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads // 2, head_dim=hidden // heads, num_local_experts=experts,
        num_experts_per_tok=2, sliding_window=128,
        layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)],
        tie_word_embeddings=False, eos_token_id=special["eos"], pad_token_id=special["pad"],
        bos_token_id=special["bos"],
        dtype="float32",
    )


def expand(small, used: list[int], args, ids: SpecialIds):
    """A full-vocabulary GptOss with the trained weights; unused embedding/output rows are zero."""
    import torch
    from transformers import GptOssForCausalLM

    full = GptOssForCausalLM(tiny_config(FULL_VOCAB, args["hidden"], args["layers"], args["experts"], ids,
                                          heads=args.get("heads", 4)))
    state = small.state_dict()
    rows = torch.tensor(used)
    with torch.no_grad():
        for name, tensor in full.state_dict().items():
            if name in ("model.embed_tokens.weight", "lm_head.weight"):
                tensor.zero_()
                tensor[rows] = state[name]
            else:
                tensor.copy_(state[name])
    return full.eval()


def save(full, folder: Path, codec: HarmonyCodec, meta: dict) -> None:
    from transformers import GenerationConfig
    from transformers.utils import logging as hf_logging

    folder.mkdir(parents=True, exist_ok=True)
    hf_logging.disable_progress_bar()  # a bar for writing one small file is noise; the page shows the stage
    try:
        full.save_pretrained(folder)
    finally:
        hf_logging.enable_progress_bar()
    ids = SpecialIds.of(codec)
    GenerationConfig(do_sample=True, temperature=1.0, top_p=1.0, eos_token_id=[ids.ret, ids.call],
                     pad_token_id=ids.pad, bos_token_id=ids.bos).save_pretrained(folder)
    from backend.demo.tokenizer import save_tokenizer

    save_tokenizer(folder, codec)
    (folder / "demo_build.json").write_text(json.dumps(meta, indent=2))


ARTIFACT = Path(__file__).parent / "weights.safetensors"  # the trained small model, committed (~2 MB)


def save_artifact(small, used: list[int], args: dict, path: Path = ARTIFACT) -> None:
    """Store the small model (fp16) and its id table; the full folder is rebuilt from it exactly."""
    import torch
    from safetensors.torch import save_file

    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in small.state_dict().items()}
    tensors["used_ids"] = torch.tensor(used, dtype=torch.int64)
    save_file(tensors, str(path), metadata={"args": json.dumps(args), "version": str(BUILD_VERSION)})


def load_artifact(codec: HarmonyCodec, path: Path = ARTIFACT):
    import torch
    from safetensors import safe_open
    from transformers import GptOssForCausalLM

    with safe_open(str(path), "pt") as f:
        args = json.loads(f.metadata()["args"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    used = tensors.pop("used_ids").tolist()
    index = {t: i for i, t in enumerate(used)}
    small = GptOssForCausalLM(tiny_config(len(used), args["hidden"], args["layers"], args["experts"],
                                           SpecialIds.of(codec), index, args.get("heads", 4)))
    small.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()})
    return small.eval(), used, args


def build(folder: Path, codec: HarmonyCodec, progress: Callable | None = None) -> Path:
    """Write the full model folder from the committed artifact (seconds), training it first if absent."""
    progress = progress or (lambda stage, fraction: print(stage, flush=True))
    if not ARTIFACT.is_file():
        raise FileNotFoundError(f"{ARTIFACT} is missing: retrain it with `python -m lab.train --train`.")
    progress("Building the demo model: expanding to the full vocabulary", None)
    small, used, args = load_artifact(codec)
    meta = {"version": BUILD_VERSION, "args": args, "used_ids": len(used)}
    save(expand(small, used, args, SpecialIds.of(codec)), folder, codec, meta)
    progress("Built the demo model", 1.0)
    return folder


def is_built(folder: Path) -> bool:
    meta = folder / "demo_build.json"
    return meta.is_file() and json.loads(meta.read_text()).get("version") == BUILD_VERSION \
        and (folder / "model.safetensors").is_file()


def ensure_built(folder: Path, codec: HarmonyCodec, progress: Callable | None = None) -> Path:
    """The cached folder, built on first use."""
    return folder if is_built(folder) else build(folder, codec, progress)

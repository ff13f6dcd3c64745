"""Tokenizer files for the demo model folder, built offline from the o200k vocabulary.

So that other tools (e.g. `transformers serve`) can load the folder like the
real gpt-oss. The app itself never uses them: it renders with openai-harmony.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

# tiktoken's o200k pattern (openai/tiktoken, tiktoken_ext/openai_public.py)
O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
HARMONY_SPECIALS = {199998: "<|startoftext|>", 199999: "<|endoftext|>", 200002: "<|return|>",
                    200003: "<|constrain|>", 200005: "<|channel|>", 200006: "<|start|>", 200007: "<|end|>",
                    200008: "<|message|>", 200012: "<|call|>"}
VOCAB_SIZE = 201088


def _ranks(path: Path) -> dict[bytes, int]:
    ranks = {}
    for line in path.read_text().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def save_tokenizer(folder: Path) -> None:
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab_file = Path(os.environ["TIKTOKEN_ENCODINGS_BASE"]) / "o200k_base.tiktoken"

    class _Converter(TikTokenConverter):  # reads the file ourselves: no tiktoken package needed
        @staticmethod
        def load_tiktoken_bpe(url):
            return _ranks(Path(url))

    specials = [HARMONY_SPECIALS.get(i, f"<|reserved_{i}|>") for i in range(199998, VOCAB_SIZE)]
    converter = _Converter(vocab_file=str(vocab_file), pattern=O200K_PATTERN)
    from tokenizers import AddedToken, Regex, decoders, pre_tokenizers

    backend = converter.tokenizer()
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(O200K_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|startoftext|>",
                                  eos_token="<|return|>", pad_token="<|endoftext|>")
    tok.save_pretrained(folder)

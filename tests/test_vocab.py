"""The o200k vocabulary is found offline."""

import hashlib

import pytest

from backend.harmony import vocab
from core.errors import VocabularyError


def test_bundled_copy_is_checked_and_cached(tmp_path, monkeypatch):
    monkeypatch.delenv(vocab.ENV_VAR, raising=False)
    folder = vocab.ensure_vocabulary(tmp_path)
    data = (folder / vocab.VOCAB_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == vocab.VOCAB_SHA256
    assert vocab.os.environ[vocab.ENV_VAR] == str(tmp_path)


def test_env_var_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(vocab.ENV_VAR, str(tmp_path / "mine"))
    assert vocab.ensure_vocabulary(tmp_path) == tmp_path / "mine"


def test_corrupt_cache_is_not_used(tmp_path, monkeypatch):
    monkeypatch.delenv(vocab.ENV_VAR, raising=False)
    monkeypatch.setattr(vocab, "_bundled_gz", lambda: None)
    (tmp_path / vocab.VOCAB_FILE).write_bytes(b"not the vocabulary")
    assert vocab.ensure_vocabulary(tmp_path) is None


def test_failure_names_the_env_var_and_file(tmp_path, monkeypatch):
    import openai_harmony

    monkeypatch.delenv(vocab.ENV_VAR, raising=False)
    monkeypatch.setattr(vocab, "_bundled_gz", lambda: None)

    def offline(name):  # what harmony does with no file and no network
        raise openai_harmony.HarmonyError("failed to download o200k_base.tiktoken")

    monkeypatch.setattr(openai_harmony, "load_harmony_encoding", offline)
    with pytest.raises(VocabularyError) as err:
        vocab.load_encoding(tmp_path)
    assert vocab.ENV_VAR in err.value.user_message and vocab.VOCAB_FILE in err.value.user_message

"""The renderer's input is checked first: text made to stall the tokenizer is a sentence, at once."""

import pytest

from backend.harmony.codec import PromptMessage, PromptSettings
from backend.harmony.limits import MAX_PROMPT_CHARS, MAX_RUN, check_renderable, unwritable
from core.errors import InputError


def turns(*texts):
    return [PromptMessage("user", t) for t in texts]


@pytest.mark.parametrize("text", [
    "x" * (MAX_RUN + 1),  # one long run
    ("y" * 3_000 + " ") * 4,  # several shorter ones over the budget
    "a\u0301" * 3_000,  # combining marks are part of the tokenizer's piece too
    "的" * (MAX_RUN + 1),
])
def test_runs_that_stall_the_tokenizer_are_refused(text):
    with pytest.raises(InputError, match="runs? of letters"):
        check_renderable(turns(text), PromptSettings())


@pytest.mark.parametrize("text", [
    "word " * 30_000,  # prose
    '{"a": [1, 2, 3], "b": "cde"}' * 3_000,  # minified JSON
    "aGVsbG8gd29ybGQ0NTY3ODkwYWJjZGVmZ2hpams=" * 2_000,  # base64
    "这是一个句子，它有标点。" * 5_000,  # CJK with its punctuation
    "x" * MAX_RUN,
])
def test_ordinary_text_passes(text):
    check_renderable(turns(text), PromptSettings())


def test_a_prompt_longer_than_any_window_is_refused_by_its_length(codec):
    with pytest.raises(InputError, match="too long for the model"):
        check_renderable(turns("word " * (MAX_PROMPT_CHARS // 5 + 1)), PromptSettings())
    settings = PromptSettings(tools=[{"name": "f", "description": "x" * (MAX_RUN + 10), "parameters": {}}])
    with pytest.raises(InputError):  # descriptions count as much as messages
        codec.render(turns("hi"), settings)


def test_the_renderer_is_never_reached_with_such_text(codec, monkeypatch):
    monkeypatch.setattr(type(codec.encoding), "render_conversation_for_completion",
                        lambda *a, **k: pytest.fail("rendered"), raising=False)
    with pytest.raises(InputError):
        codec.render(turns("x" * 200_000), PromptSettings())


def test_lone_surrogates_are_found_anywhere():
    assert unwritable({"a": ["ok", {"k\ud800": 1}]}) is not None
    assert unwritable({"a": ["ok", {"k": "\U0001f600"}]}) is None

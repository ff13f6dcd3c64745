"""Tokenizer files for the demo model folder, built offline from the o200k vocabulary.

So that other tools (e.g. `transformers serve`) can load the folder like the
real gpt-oss, chat template and response template included. The app itself never
uses them: it renders and parses with openai-harmony.
"""

from __future__ import annotations

from pathlib import Path

from backend.harmony.vocab import O200K_PATTERN, VOCAB_FILE, read_ranks, vocabulary_file
from core.errors import VocabularyError

VOCAB_SIZE = 201088

# A harmony chat template for servers that render prompts themselves (`transformers serve`). It
# writes what openai-harmony writes for text conversations (a test compares the two); the app
# itself always renders with openai-harmony. Tools are not templated here.
CHAT_TEMPLATE = (
    "{%- set effort = reasoning_effort | default('medium') -%}"
    "{%- set date = conversation_date | default(strftime_now('%Y-%m-%d')) -%}"
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\nCurrent date: {{ date }}\n\nReasoning: {{ effort }}\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
    "{%- for m in messages if m.role in ('system', 'developer') and m.content -%}"
    "{%- if loop.first %}<|start|>developer<|message|># Instructions\n\n{% endif -%}"
    "{{ m.content }}{% if loop.last %}<|end|>{% else %}\n\n{% endif -%}"
    "{%- endfor -%}"
    "{%- for m in messages -%}"
    "{%- if m.role == 'user' -%}<|start|>user<|message|>{{ m.content }}<|end|>"
    "{%- elif m.role == 'assistant' -%}<|start|>assistant<|channel|>final<|message|>{{ m.content }}<|end|>"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}"
)
# How `transformers serve` splits a completion into reasoning and answer (its response_template
# format): analysis up to <|end|>, the final channel up to <|return|>.
RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|start|>assistant",
    "fields": {
        "reasoning_content": {"open": "<|channel|>analysis<|message|>", "close": "<|end|>", "content": "text"},
        "content": {"open_pattern": r"(?:<\|start\|>assistant)?<\|channel\|>final<\|message\|>",
                    "close": ["<|return|>", "<|end|>"], "content": "text"},
    },
}


def save_tokenizer(folder: Path, codec) -> None:
    """tokenizer.json for the folder: o200k plus harmony's special tokens, each at its id in the encoding."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab_file = vocabulary_file()
    if vocab_file is None:
        raise VocabularyError(f"The o200k vocabulary file ({VOCAB_FILE}) is needed for the demo model's tokenizer.")

    class _Converter(TikTokenConverter):  # reads the file ourselves: no tiktoken package needed
        @staticmethod
        def load_tiktoken_bpe(url):
            return read_ranks(Path(url))

    names = codec.special_names()  # added in id order, so each lands at its harmony id
    specials = [names[i] for i in range(min(names), VOCAB_SIZE)]
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
    tok.chat_template = CHAT_TEMPLATE
    tok.response_template = RESPONSE_TEMPLATE
    tok.save_pretrained(folder)

"""Config comes from flags and GPT_OSS_CHAT_* env vars, flags first."""

import pytest

from backend.config import DEFAULT_MODEL, parse_config


def test_defaults():
    config = parse_config([], {})
    assert config.model == DEFAULT_MODEL and config.quantization == "auto"
    assert config.db_url.startswith("sqlite:///") and config.db_url.endswith("chat.db")


def test_env_then_flags():
    env = {"GPT_OSS_CHAT_MODEL": "/models/x", "GPT_OSS_CHAT_PORT": "9000", "GPT_OSS_CHAT_SHARE": "true"}
    config = parse_config([], env)
    assert (config.model, config.port, config.share) == ("/models/x", 9000, True)
    assert parse_config(["--model", "/models/y", "--max-batch-tokens", "512"], env).model == "/models/y"
    assert parse_config(["--max-batch-tokens", "512"], env).max_batch_tokens == 512


def test_limits_are_checked():
    with pytest.raises(SystemExit):
        parse_config(["--max-new-tokens", "999999"], {})

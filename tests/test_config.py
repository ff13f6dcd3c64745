"""Config comes from flags and GPT_OSS_CHAT_* env vars, flags first."""

import pytest

from core.config import DEFAULT_MODEL, parse_config


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


def test_share_link_defaults():
    config = parse_config([], {})
    assert (config.share_link_expiry, config.share_link_reasoning, config.hf_login) == ("7 days", False, False)
    assert parse_config(["--share-link-expiry", "never", "--share-link-reasoning"], {}).share_link_reasoning
    with pytest.raises(SystemExit):
        parse_config(["--share-link-expiry", "forever"], {})


def test_on_a_space(tmp_path, monkeypatch):
    monkeypatch.setattr("core.config.SPACE_STORAGE", str(tmp_path))  # stands in for /data
    space = {"SPACE_ID": "team/chat", "OAUTH_CLIENT_ID": "abc"}
    config = parse_config([], space)
    assert (config.host, config.data_dir, config.hf_login) == ("0.0.0.0", str(tmp_path), True)
    assert parse_config(["--data-dir", "/elsewhere"], space).data_dir == "/elsewhere"
    assert not parse_config([], {"SPACE_ID": "team/chat"}).hf_login  # no hf_oauth in the README: no sign-in
    monkeypatch.setattr("core.config.SPACE_STORAGE", str(tmp_path / "missing"))
    assert parse_config([], space).data_dir == "data"  # no persistent storage on this Space


def test_every_setting_is_in_the_readme_table():
    from dataclasses import fields
    from pathlib import Path

    from core.config import Config

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| `--")]
    for f in fields(Config):
        if f.name != "model_explicit":
            flag = "`--" + f.name.replace("_", "-") + "`"
            assert any(flag in line for line in table), f"{flag} is missing from README's configuration table"


def test_flag_types_come_from_the_annotations():
    from typing import Optional

    from core.config import field_type

    assert field_type(float | None, "x") is float and field_type(Optional[int], "x") is int
    assert field_type(bool, "x") is bool and field_type(str, "x") is str
    with pytest.raises(TypeError):
        field_type(list[int], "x")  # a new kind of field must say how it parses, not become a string
    config = parse_config(["--max-batch-tokens", "512", "--server-timeout-s", "2.5"], {})
    assert config.max_batch_tokens == 512 and config.server_timeout_s == 2.5

"""The app's /v1 in tests: the launched app on the forced tiny model, and what it is made to say."""

from core.config import Config
from testkit.net import free_port

# A turn that calls get_weather, and what the model says once the result is in.
CALL = ("<|channel|>analysis<|message|>Ask the function.<|end|><|start|>assistant to=functions.get_weather"
        "<|channel|>commentary <|constrain|>json<|message|>{\"city\": \"Paris\"}<|call|>")
AFTER = "<|channel|>analysis<|message|>It said sunny.<|end|><|start|>assistant<|channel|>final<|message|>Sunny in Paris.<|return|>"


def api_app(launched, tmp_path, text=None, then=(), **settings):
    """(parts, config, base URL without /v1) of an app launched on the forced model saying `text`."""
    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, max_active=4, max_waiting=4,
                    **settings)
    parts = launched(config, *(() if text is None else (text,)), then=then)
    return parts, config, f"http://127.0.0.1:{config.port}"


def api_client(base: str, key: str = "EMPTY"):
    import openai

    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=60)

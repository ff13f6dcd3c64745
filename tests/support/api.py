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


def parsed_weather(client, model: str, weather_class):
    """The official client's `chat.completions.parse` of a Pydantic class asked of the app: the object,
    checked as every engine must give it (the finish reason stop, the content that very JSON, the
    reasoning apart)."""
    r = client.chat.completions.parse(model=model, messages=[{"role": "user", "content": "Is it sunny in Paris?"}],
                                      response_format=weather_class, max_tokens=400)
    message = r.choices[0].message
    assert isinstance(message.parsed, weather_class) and r.choices[0].finish_reason == "stop"
    assert weather_class.model_validate_json(message.content) == message.parsed
    assert message.model_extra.get("reasoning_content")  # the reasoning was written freely, and apart
    return message.parsed

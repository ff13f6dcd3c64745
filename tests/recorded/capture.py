"""Capture a live server's streamed answers, byte for byte, as files for the replay tests.

    python -m tests.recorded.capture http://127.0.0.1:8080 llamacpp_live [chat | llamacpp]

writes `<prefix>_chat.sse` (a reasoning question) and `<prefix>_tool_call.sse` (a weather question
with the get_weather tool) into `tests/recorded/`: asked through /v1/chat/completions (`chat`, the
default) or, as harmony prompt ids rendered by openai-harmony, through llama.cpp's native
/completion (`llamacpp`). Greedy decoding (temperature 0), so capturing twice from the same server
and model writes the same answers. Which server produced a file, with which flags, is written in
README.md beside it.
"""

from __future__ import annotations

import json
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ASKS = {
    "chat": {"messages": [{"role": "user", "content": "Convert 3 km to m"}], "reasoning_effort": "high"},
    "tool_call": {"messages": [{"role": "user", "content": "What is the weather in Paris?"}],
                  "reasoning_effort": "low", "tools": [WEATHER]},
}


def post(url: str, body: dict) -> bytes:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return response.read()


def chat_body(ask: dict) -> tuple[str, dict]:
    return "/v1/chat/completions", {"model": "gpt-oss", "stream": True, "temperature": 0, "max_tokens": 300,
                                    "stream_options": {"include_usage": True}, **ask}


def llamacpp_body(ask: dict) -> tuple[str, dict]:
    from backend.harmony.codec import HarmonyCodec, PromptMessage, PromptSettings
    from backend.harmony.vocab import load_encoding

    codec = HarmonyCodec(load_encoding(Path(tempfile.gettempdir()) / "gpt-oss-chat-vocab"))
    tools = [t["function"] for t in ask.get("tools", [])]
    ids = codec.render([PromptMessage(m["role"], m["content"]) for m in ask["messages"]],
                       PromptSettings(effort=ask["reasoning_effort"], date="2026-11-28", tools=tools))
    return "/completion", {"prompt": ids, "n_predict": 300, "stream": True, "return_tokens": True,
                           "temperature": 0}


def main(base_url: str, prefix: str, api: str = "chat") -> None:
    make_body = {"chat": chat_body, "llamacpp": llamacpp_body}[api]
    for name, ask in ASKS.items():
        path, body = make_body(ask)
        (HERE / f"{prefix}_{name}.sse").write_bytes(post(base_url.rstrip("/") + path, body))
        print(f"wrote {prefix}_{name}.sse")


if __name__ == "__main__":
    main(*sys.argv[1:4])

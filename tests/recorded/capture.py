"""Capture a live server's streamed answers, byte for byte, as files for the replay tests.

    python tests/recorded/capture.py http://127.0.0.1:8080 llamacpp_live

writes `<prefix>_chat.sse` (a reasoning question) and `<prefix>_tool_call.sse` (a weather question
with the get_weather tool) into `tests/recorded/`. Greedy decoding
(temperature 0), so capturing twice from the same server and model writes the same answers.
Which server produced a file, with which flags, is written in README.md beside it.
"""

from __future__ import annotations

import json
import sys
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


def capture(base_url: str, body: dict) -> bytes:
    body = {"model": "gpt-oss", "stream": True, "temperature": 0, "max_tokens": 300,
            "stream_options": {"include_usage": True}, **body}
    request = urllib.request.Request(base_url.rstrip("/") + "/v1/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return response.read()


def main(base_url: str, prefix: str) -> None:
    for name, body in ASKS.items():
        (HERE / f"{prefix}_{name}.sse").write_bytes(capture(base_url, body))
        print(f"wrote {prefix}_{name}.sse")


if __name__ == "__main__":
    main(*sys.argv[1:3])

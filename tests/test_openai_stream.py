"""Chunk readers for the servers' stream formats (no network)."""

import pytest

from backend.engines.openai_stream import (
    StreamFormatError,
    ToolCalls,
    chat_piece,
    completion_piece,
    llamacpp_piece,
    ollama_piece,
    sse_data,
)
from core.errors import GenerationError


def test_sse_lines():
    assert sse_data('data: {"a":1}') == '{"a":1}' and sse_data("data:[DONE]") == "[DONE]"
    assert sse_data(": keep-alive") is None and sse_data("event: message") is None and sse_data("") is None


def test_token_ids_from_vllm_both_ways():
    piece = completion_piece('{"choices":[{"text":"<|channel|>","token_ids":[200005],"finish_reason":null}]}')
    assert piece.ids == [200005] and piece.finish_reason is None
    legacy = completion_piece('{"choices":[{"text":"x","logprobs":{"tokens":["token_id:200005","token_id:12"]}}]}')
    assert legacy.ids == [200005, 12]
    end = completion_piece('{"choices":[{"text":"","token_ids":[],"finish_reason":"stop","stop_reason":200002}]}')
    assert end.finish_reason == "stop" and end.stop_token == 200002
    assert completion_piece("[DONE]").done


def test_token_ids_from_llama_cpp_native_completion():
    piece = llamacpp_piece('{"index":0,"content":"<|channel|>","tokens":[200005],"stop":false}')
    assert piece.ids == [200005] and not piece.done and piece.finish_reason is None
    end = llamacpp_piece('{"content":"","tokens":[],"stop":true,"stop_type":"eos","tokens_predicted":66,'
                         '"timings":{"predicted_n":66,"predicted_per_second":190.5}}')
    assert end.done and end.finish_reason == "stop" and end.ids == []
    assert end.usage == {"tokens_per_s": 190.5, "completion_tokens": 66}
    assert llamacpp_piece('{"content":"","tokens":[],"stop":true,"stop_type":"limit"}').finish_reason == "length"
    assert llamacpp_piece('{"content":"hi","stop":false}').ids is None  # an old server: text only


def test_chat_reasoning_fields_and_usage():
    assert chat_piece('{"choices":[{"delta":{"reasoning":"a"}}]}').reasoning == "a"
    assert chat_piece('{"choices":[{"delta":{"reasoning_content":"b"}}]}').reasoning == "b"
    usage = chat_piece('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,'
                       '"completion_tokens_details":{"reasoning_tokens":2}}}').usage
    assert usage == {"prompt_tokens": 3, "completion_tokens": 5, "reasoning_tokens": 2}


def test_ollama_lines():
    assert ollama_piece('{"message":{"role":"assistant","content":"","thinking":"hm"},"done":false}').reasoning == "hm"
    last = ollama_piece('{"message":{"content":""},"done":true,"done_reason":"length","eval_count":8,'
                        '"eval_duration":200000000}')
    assert last.done and last.finish_reason == "length" and last.usage["tokens_per_s"] == pytest.approx(40.0)


def test_errors_inside_the_stream():
    with pytest.raises(StreamFormatError, match="malformed"):
        chat_piece("{oops")
    with pytest.raises(StreamFormatError):
        chat_piece("[1, 2]")
    with pytest.raises(GenerationError, match="out of memory"):
        chat_piece('{"error":{"message":"CUDA out of memory","code":500}}')


def test_tool_call_fragments():
    calls = ToolCalls()
    calls.add([{"index": 0, "function": {"name": "get_weather", "arguments": ""}}])
    calls.add([{"index": 0, "function": {"arguments": '{"city":'}}, {"index": 1, "function": {"name": "b"}}])
    calls.add([{"index": 0, "function": {"arguments": ' "Oslo"}'}}])
    assert calls.take() == [{"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                            {"name": "b", "arguments": ""}]
    calls.add([{"index": 0, "function": {"name": "c", "arguments": {"x": 1}}}])  # Ollama: a whole object
    assert calls.take() == [{"name": "c", "arguments": '{"x": 1}'}]

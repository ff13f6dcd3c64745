"""Chat-server deltas back into harmony ids, parsed by the same HarmonyStream as local output."""

from backend.harmony.bridge import DeltaWriter, chat_prompt, looks_like_harmony
from backend.harmony.codec import PromptMessage, PromptSettings
from core.events import Answer, Reasoning, ToolCall


def parse(codec, ids):
    stream = codec.parser()
    events = [e for t in ids for e in stream.feed(t)] + list(stream.finish())
    return events, stream


def texts(events, kind):
    return "".join(e.text for e in events if isinstance(e, kind))


def test_chat_prompt():
    prompt = chat_prompt([PromptMessage("user", "hi"), PromptMessage("assistant", "Hello", reasoning="secret"), PromptMessage("user", "again")],
                         PromptSettings(effort="low", instructions="Be brief",
                                        tools=[{"name": "get_weather", "parameters": {"type": "object"}}]))
    assert prompt.messages == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "hi"},
                               {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "again"}]
    assert prompt.effort == "low" and prompt.tools[0]["function"]["name"] == "get_weather"


def test_reasoning_then_answer(codec):
    w = DeltaWriter(codec.encoding)
    ids = w.reasoning("Think ") + w.reasoning("a bit.") + w.answer("Done") + w.answer("!") + w.finish("stop")
    events, stream = parse(codec, ids)
    assert (texts(events, Reasoning), texts(events, Answer)) == ("Think a bit.", "Done!")
    assert not stream.malformed and ids[-1] == 200002  # <|return|>


def test_control_tokens_in_server_text_stay_text(codec):
    w = DeltaWriter(codec.encoding)
    ids = w.answer("Use <|end|> and <|start|> literally.") + w.finish("stop")
    events, _ = parse(codec, ids)
    assert texts(events, Answer) == "Use <|end|> and <|start|> literally."
    assert ids.count(200007) == 0 and ids.count(200006) == 0


def test_raw_harmony_content_even_split_inside_a_special_token(codec):
    w = DeltaWriter(codec.encoding)
    pieces = ["<|chan", "nel|>analysis<|mes", "sage|>Hmm.<|end|><|start|>assistant<|channel|>final<|message|>Yes"]
    ids = [i for p in pieces for i in w.content(p)] + w.finish("stop")
    events, stream = parse(codec, ids)
    assert (texts(events, Reasoning), texts(events, Answer)) == ("Hmm.", "Yes")
    assert not stream.malformed


def test_raw_content_without_the_final_header_as_llama_cpp_sends_it(codec):
    # llama-server --reasoning-format none streams `...<|end|>` then the answer with its header dropped
    w = DeltaWriter(codec.encoding)
    pieces = ["<|channel|>", "analysis", "<|message|>", "Hmm.", "<|end|>", "3 km", " = 3000 m"]
    ids = [i for p in pieces for i in w.content(p)] + w.finish("stop")
    events, stream = parse(codec, ids)
    assert (texts(events, Reasoning), texts(events, Answer)) == ("Hmm.", "3 km = 3000 m")
    assert not stream.malformed and ids[-1] == 200002  # <|return|>, as after a parsed answer


def test_raw_reasoning_then_a_parsed_tool_call(codec):
    w = DeltaWriter(codec.encoding)
    ids = w.content("<|channel|>analysis<|message|>Call it.<|end|>") + w.tool_call("get_weather", '{"city": "Paris"}')
    events, stream = parse(codec, ids + w.finish("tool_calls"))
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert texts(events, Reasoning) == "Call it." and texts(events, Answer) == ""
    assert [(c.recipient, c.arguments) for c in calls] == [("functions.get_weather", '{"city": "Paris"}')]
    assert not stream.malformed


def test_plain_content_that_starts_like_markup_is_answer(codec):
    w = DeltaWriter(codec.encoding)
    ids = w.content("<") + w.content("b> is bold") + w.finish("stop")
    assert texts(parse(codec, ids)[0], Answer) == "<b> is bold"
    assert texts(parse(codec, DeltaWriter(codec.encoding).content("<|") + [])[0], Answer) == ""


def test_tool_call_after_reasoning(codec):
    w = DeltaWriter(codec.encoding)
    ids = w.reasoning("Need weather.") + w.tool_call("get_weather", {"city": "Paris"}) + w.finish("tool_calls")
    events, _ = parse(codec, ids)
    call = [e for e in events if isinstance(e, ToolCall)][0]
    assert (call.recipient, call.arguments) == ("functions.get_weather", '{"city": "Paris"}')
    assert ids[-1] == 200012  # <|call|>


def test_looks_like_harmony():
    assert looks_like_harmony("<|channel|>analysis") is True
    assert looks_like_harmony("  <|start|>") is True
    assert looks_like_harmony("<|cha") is None and looks_like_harmony("") is None
    assert looks_like_harmony("Hello") is False and looks_like_harmony("<b>") is False

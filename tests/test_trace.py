"""The typed trace and its one JSON form (core/trace.py)."""

from core.trace import (
    PreambleStep,
    ReasoningStep,
    ToolCallStep,
    ToolResultStep,
    copy_step,
    from_json,
    to_json,
)


def test_every_step_survives_json_and_keeps_its_kind():
    trace = [ReasoningStep(0, 9, seconds=1.0, tokens=12), PreambleStep("Checking.", closed=True),
             ToolCallStep("browser.search", '{"query": "x"}'),
             ToolResultStep("browser.search", "L0: x", "ok", 0.2, "1 result", [{"cursor": 0, "url": "u"}]),
             ReasoningStep(hidden=True, tokens=3)]
    data = to_json(trace)
    assert [e["kind"] for e in data] == ["reasoning", "preamble", "tool_call", "tool_result", "reasoning"]
    assert from_json(data) == trace


def test_older_entries_are_read_with_defaults_and_unknown_ones_skipped():
    stored = [{"kind": "tool_result", "recipient": "python", "output": "42", "legacy_key": 1},
              {"kind": "something_new"}, "not a step", {"kind": "tool_call"}]
    assert from_json(stored) == [ToolResultStep("python", "42"), ToolCallStep()]
    assert from_json(None) == []


def test_a_copy_shares_nothing_mutable():
    result = ToolResultStep("browser.open", pages=[{"cursor": 1}])
    copied = copy_step(result)
    copied.pages[0]["cursor"] = 2
    assert result.pages == [{"cursor": 1}] and copied.ok

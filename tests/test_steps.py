"""A stored turn as the steps a person reads, with one wording for the page and the share page."""

from core.records import MessageView
from core.steps import display_steps, fenced, link_citations, pages_of, tool_title
from core.trace import ToolCallStep, ToolResultStep, from_json

TRACE = [
    {"kind": "reasoning", "start": 0, "end": 11, "seconds": 3.2, "tokens": 9},
    {"kind": "tool_call", "recipient": "browser.search", "arguments": '{"query": "gpt-oss license"}'},
    {"kind": "tool_result", "recipient": "browser.search", "output": "...", "status": "ok", "seconds": 0.05,
     "summary": "2 results", "pages": [{"cursor": 0, "title": "Search", "url": "search?q=x"},
                                       {"cursor": 0, "link": 0, "title": "License", "url": "doc/4"}]},
    {"kind": "tool_call", "recipient": "browser.open", "arguments": '{"id": 0}'},
    {"kind": "tool_result", "recipient": "browser.open", "output": "L0: Apache", "status": "ok", "seconds": 0.01,
     "summary": "License", "pages": [{"cursor": 1, "title": "License", "url": "doc/4"}]},
    {"kind": "reasoning", "start": 13, "end": 20, "seconds": 1.0},
    {"kind": "tool_call", "recipient": "python", "arguments": "1/0"},
]


def message(**kw):
    return MessageView(id=1, position=1, role="assistant", content="", reasoning="Look it up.\n\nFound.",
                       trace=from_json(TRACE), **kw)


def test_steps_come_in_the_order_they_happened_with_their_headings():
    steps = display_steps(message(), streaming=True)
    assert [s.title for s in steps] == ["Thought for 3.2 s · 9 tokens", "Searched 'gpt-oss license' · 2 results · 0.1 s",
                                        "Opened a page · License · 0.0 s", "Thought for 1.0 s", "Running python…"]
    assert [s.text for s in steps if s.kind == "thought"] == ["Look it up.", "Found."]
    assert steps[-1].pending and not steps[0].pending


def test_without_reasoning_only_the_actions_remain():
    steps = display_steps(message(), include_reasoning=False)
    assert [s.kind for s in steps] == ["tool", "tool", "tool"]


def test_an_answer_stored_before_steps_shows_one_thought_first():
    old = MessageView(id=1, position=1, role="assistant", content="Hi", reasoning="Greet.", reasoning_time=2.0)
    assert [(s.kind, s.title, s.text) for s in display_steps(old)] == [("thought", "Thought for 2.0 s", "Greet.")]


def test_failed_and_stopped_tools_say_so():
    assert tool_title(ToolCallStep("python"), ToolResultStep("python", status="error", seconds=0.2)) == \
        "Ran python · 0.2 s · failed"
    assert tool_title(ToolCallStep("functions.calculate"), ToolResultStep(status="stopped")) == \
        "Called calculate · stopped"


def test_citations_link_to_the_page_they_cite():
    pages = pages_of(message())
    text = link_citations("Apache 2.0 【1†L0-L2】 and 【9†L1】", pages)
    assert "[【License L0-L2】](doc/4#L0)" in text and "【9†L1】" in text  # an unknown cursor stays as written


def test_fences_cannot_be_closed_by_the_text_inside():
    block = fenced("```\n<script>")
    assert block.startswith("````") and block.endswith("````")


def test_a_call_paused_for_the_users_result_says_so():
    m = MessageView(id=1, position=1, role="assistant", content="", stop_reason="call",
                    trace=[ToolCallStep("functions.get_weather", "{}")])
    assert display_steps(m)[-1].title == "Called get_weather · waiting for its result"


def test_a_turns_steps_fold_under_one_line():
    from core.steps import fold_title

    done = message()
    done.trace = from_json(TRACE[:6] + [TRACE[6], {"kind": "tool_result", "recipient": "python", "output": "1",
                                                    "status": "ok", "seconds": 0.2}])
    assert fold_title(display_steps(done)) == "Thought for 4.2 s · searched once · opened a page once · ran python once"
    assert fold_title(display_steps(message(), streaming=True)) == "Running python…"  # the step running now
    python_only = message()
    python_only.reasoning = ""
    python_only.trace = from_json([TRACE[6], {"kind": "tool_result", "recipient": "python", "output": "1",
                                              "status": "ok"}] * 2)
    assert fold_title(display_steps(python_only)) == "Ran python twice"

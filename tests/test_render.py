"""Stored messages as the page's chat rows (ui/render.py): "‹ i / n ›" under a message with siblings, and an
answer that ended without final text said in words."""

from core.records import MessageView
from ui.render import branch_nav, render_history


def test_siblings_get_arrows_to_the_one_before_and_after():
    middle = MessageView(id=7, position=3, role="assistant", content="b", siblings=[5, 7, 9])
    assert branch_nav(middle) == "[‹](#branch-5) **2 / 3** [›](#branch-9) · answer"
    first = MessageView(id=5, position=1, role="user", content="q", siblings=[5, 8])
    assert branch_nav(first) == "‹ **1 / 2** [›](#branch-8) · version of your message"
    assert branch_nav(MessageView(id=4, position=0, role="user", content="q", siblings=[4])) is None


def test_rows_and_edit_positions_line_up_with_the_navigation_rows():
    user = MessageView(id=5, position=0, role="user", content="q", siblings=[5, 8])
    answer = MessageView(id=6, position=1, role="assistant", content="a", siblings=[6], stop_reason="return")
    history = render_history([user, answer])
    assert history.positions[0] == 0 and history.positions[1] is None  # the row under the message: no edit
    assert len(history.rows) == len(history.positions)


def test_an_answer_with_only_reasoning_says_so():
    answer = MessageView(id=6, position=1, role="assistant", content="", reasoning="Let me think.",
                         stop_reason="return", reasoning_tokens=4, answer_tokens=0)
    texts = [str(row.content) for row in render_history([answer]).rows]
    assert any("ended without an answer" in t for t in texts)


def test_the_share_page_says_it_too():
    from core.records import SharedConversation
    from ui.shared_page import render_shared

    answer = MessageView(id=6, position=1, role="assistant", content="", reasoning="Let me think.", stop_reason="return")
    page = render_shared(SharedConversation("t", "2026-12-05", True, [answer]), "copy")
    assert "ended without an answer" in page


def test_one_answer_is_one_fold_its_text_and_a_quiet_stats_line():
    from core.trace import from_json

    answer = MessageView(id=6, position=1, role="assistant", content="The answer is 42.", reasoning="Add.Done.",
                         effort="medium", stop_reason="return", reasoning_tokens=5, answer_tokens=6,
                         trace=from_json([{"kind": "reasoning", "start": 0, "end": 4, "seconds": 1.2, "tokens": 3},
                                          {"kind": "tool_call", "recipient": "python", "arguments": "print(17+25)"},
                                          {"kind": "tool_result", "recipient": "python", "output": "42",
                                           "status": "ok", "seconds": 0.2},
                                          {"kind": "reasoning", "start": 4, "end": 9, "seconds": 0.7}]))
    fold, *steps, text, stats = render_history([answer]).rows
    assert fold.metadata["title"] == "Thought for 1.9 s · ran python once" and fold.metadata["status"] == "done"
    assert [s.metadata["parent_id"] for s in steps] == [fold.metadata["id"]] * 3  # nested in the fold
    assert [s.metadata["title"] for s in steps] == ["Thought for 1.2 s · 3 tokens", "Ran python · 0.2 s",
                                                    "Thought for 0.7 s"]
    assert all("duration" not in s.metadata for s in steps)  # the title says it once
    assert text.content == "The answer is 42." and not text.metadata
    assert stats.content.startswith("<sub>medium effort") and not stats.metadata


def test_while_it_is_written_the_fold_is_open_on_the_step_running():
    from core.records import MessageStatus
    from core.trace import from_json
    from ui.render import assistant_messages

    writing = MessageView(id=6, position=1, role="assistant", content="", reasoning="Let me", effort="low",
                          status=MessageStatus.STREAMING,
                          trace=from_json([{"kind": "reasoning", "start": 0, "end": 6, "writing": True}]))
    fold, step = assistant_messages(writing, live=True)
    assert fold.metadata["status"] == "pending" and fold.metadata["title"] == "Thinking…"
    assert step.metadata["parent_id"] == fold.metadata["id"]  # no stats line until it ends


def test_exports_and_the_share_page_fold_the_steps_the_same_way():
    from core.records import ConversationView, SharedConversation
    from storage.exports import conversation_markdown
    from ui.shared_page import render_shared

    answer = MessageView(id=6, position=1, role="assistant", content="Hi.", reasoning="Greet.", reasoning_time=2.0,
                         stop_reason="return")
    page = render_shared(SharedConversation("t", "2026-12-05", True, [answer]), "copy")
    assert '<details class="steps"><summary>Thought for 2.0 s</summary>' in page
    markdown = conversation_markdown(ConversationView("c", "t", "", "", {}, [answer]))
    assert "<details><summary>Thought for 2.0 s</summary>" in markdown and markdown.count("</details>") == 2


def test_the_stats_line_says_when_the_answer_began_after_thinking_and_tools():
    from core.trace import ReasoningStep, ToolCallStep, ToolResultStep
    from ui.render import stats_line

    steps = [ReasoningStep(end=8), ToolCallStep(recipient="python", arguments="17+25"),
             ToolResultStep(recipient="python", output="42", seconds=0.5)]
    m = MessageView(id=1, position=1, role="assistant", content="42", effort="high", trace=steps, ttft=0.25,
                    reasoning_time=1.0, reasoning_tokens=30, answer_tokens=2)
    line = stats_line(m)
    assert "answer after 1.8 s" in line and line.index("thought") < line.index("answer after")
    plain = MessageView(id=2, position=1, role="assistant", content="Hi", effort="low", ttft=0.25)
    assert "answer after" not in stats_line(plain)  # no thinking, no tools: it is the first token's wait

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

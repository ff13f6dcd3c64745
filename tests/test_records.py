"""One vocabulary for how a turn ended: stop reasons map to message statuses in one place."""

import pytest

from core.events import StopReason
from core.records import MessageStatus, status_note


@pytest.mark.parametrize("stop, status", [
    (StopReason.RETURN, MessageStatus.COMPLETE), (StopReason.CALL, MessageStatus.COMPLETE),
    (StopReason.LENGTH, MessageStatus.COMPLETE), (StopReason.STOPPED, MessageStatus.STOPPED),
    (StopReason.ERROR, MessageStatus.ERROR), ("stopped", MessageStatus.STOPPED)])
def test_every_stop_reason_has_a_status(stop, status):
    assert MessageStatus.after(stop) is status


def test_enums_are_their_stored_strings():
    assert MessageStatus.STOPPED == "stopped" and StopReason.CALL == "call"
    assert {s.value for s in MessageStatus} == {"streaming", "complete", "stopped", "error", "interrupted"}


def test_one_wording_for_the_page_and_the_share_page():
    assert status_note("complete") == "" and status_note("complete", "length") == "cut off at the token limit"
    assert status_note("stopped") == "stopped by the user"
    assert status_note("interrupted").startswith("interrupted")
    assert status_note("something-else") == ""  # an unknown stored value shows nothing rather than failing



def test_an_answer_without_final_text_is_said_never_shown_as_nothing():
    from core.records import MessageView, no_answer_note

    def answer(**kw):
        return MessageView(id=1, position=1, role="assistant", content="", reasoning="hmm", **kw)

    assert "ended without an answer" in no_answer_note(answer(stop_reason="return"))
    assert "token limit" in no_answer_note(answer(stop_reason="length"))
    assert no_answer_note(answer(stop_reason="call")) is None  # waits for your function's result
    assert no_answer_note(answer(status="streaming")) is None and no_answer_note(answer(status="stopped")) is None
    assert no_answer_note(answer(error="The model failed.", status="error")) is None
    assert no_answer_note(MessageView(id=2, position=2, role="assistant", content="42")) is None


def test_a_malformed_answer_is_said_in_words():
    from core.records import MessageView, malformed_note

    assert "malformed" in malformed_note(MessageView(id=1, position=1, role="assistant", content="x", malformed=True))
    assert malformed_note(MessageView(id=1, position=1, role="assistant", content="x", malformed=None)) is None
    assert malformed_note(MessageView(id=1, position=1, role="assistant", content="x", malformed=False)) is None

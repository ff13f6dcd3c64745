"""Compare efforts in the chat service: one message answered at low, medium and high together, as three
sibling answers that wait below the question until one is kept; Stop stops all three; all or none start."""

import pytest

from backend.services.chat import ChatOptions, ChatService
from backend.services.compare import PICK_FIRST, EffortFigures, figures, newest_per_effort
from bench.synthetic import REASONING_WORDS, EmissionLog, SyntheticEngine
from core.errors import BusyError, InputError, NotFoundError
from core.records import MessageStatus, MessageView
from core.trace import ToolCallStep, ToolResultStep
from tests.support.threads import wait_for

OPTS = ChatOptions(effort="medium", max_new_tokens=400)


@pytest.fixture
def synthetic_host(codec, tmp_path, start_host):
    """Every answer the same harmony completion at `rate` tokens/s per stream, many streams at once (the
    forced tiny model drives one request at a time; a comparison is three)."""
    def make(rate: float = 400.0, **worker_kwargs):
        log = EmissionLog(tmp_path / "emit.jsonl")
        return start_host(lambda progress: SyntheticEngine(codec.encoding, rate, log), **worker_kwargs)
    return make


def ended(comparison) -> list:
    return [list(w)[-1] for w in comparison.watches]


def test_a_comparison_answers_one_message_at_each_effort_as_siblings(repo, synthetic_host):
    service = ChatService(repo, synthetic_host())
    comparison = service.compare("alice", None, "What is 17 + 25?", OPTS)
    cid = comparison.conversation_id
    assert [m.content for m in comparison.history] == ["What is 17 + 25?"]  # stored before the model ran
    lasts = ended(comparison)
    assert [s.live.effort for s in lasts] == ["low", "medium", "high"] and all(s.done for s in lasts)
    conv = repo.get("alice", cid)
    assert [m.role for m in conv.messages] == ["user"]  # the branch shown ends at the question...
    answers = conv.compared  # ...and the three answers wait below it
    assert [(m.effort, m.status) for m in answers] == [(e, "complete") for e in ("low", "medium", "high")]
    assert all(m.reasoning_tokens >= REASONING_WORDS and m.content for m in answers)
    assert all(m.siblings == [a.id for a in answers] and m.parent_id == conv.messages[0].id for m in answers)
    with pytest.raises(NotFoundError):
        service.attach_comparison("bob", cid)  # only the owner's


def test_a_follow_up_waits_until_one_answer_is_kept_and_goes_on_from_it(repo, synthetic_host):
    service = ChatService(repo, synthetic_host())
    cid = service.compare("alice", None, "What is 17 + 25?", OPTS).conversation_id
    for w in service.attach_comparison("alice", cid) or []:
        list(w)
    wait_for(lambda: not service.writing("alice"))
    with pytest.raises(InputError) as refused:
        service.send("alice", cid, "And 38 + 46?", OPTS)
    assert refused.value.user_message == PICK_FIRST
    assert [m.content for m in repo.get("alice", cid).messages] == ["What is 17 + 25?"]  # nothing stored
    with pytest.raises(InputError, match="no comparison"):
        service.keep("alice", cid, "extreme")
    service.keep("alice", cid, "medium")
    conv = repo.get("alice", cid)
    assert [m.effort for m in conv.messages] == [None, "medium"] and not conv.compared
    assert conv.messages[-1].branch_index == 2 and len(conv.messages[-1].siblings) == 3  # "‹ 2 / 3 ›"
    list(service.send("alice", cid, "And 38 + 46?", OPTS))
    path = repo.get("alice", cid).messages
    assert [m.effort for m in path if m.role == "assistant"] == ["medium", "medium"]


def test_with_no_text_the_last_message_of_the_branch_shown_is_compared(repo, synthetic_host):
    service = ChatService(repo, synthetic_host())
    with pytest.raises(InputError, match="Type a message"):
        service.compare("alice", None, "  ", OPTS)
    cid = list(service.send("alice", None, "What is 17 + 25?", OPTS))[-1].conversation_id
    ended(service.compare("alice", cid, "", OPTS))
    conv = repo.get("alice", cid)
    assert [m.effort for m in conv.compared] == ["medium", "low", "medium", "high"]  # the first answer too
    assert [m.effort for m in newest_per_effort(conv.compared)] == ["low", "medium", "high"]
    assert newest_per_effort(conv.compared)[1].id == conv.compared[2].id  # the comparison's own medium
    list(service.regenerate("alice", cid, ChatOptions(effort="high", max_new_tokens=400)))  # decides it too
    conv = repo.get("alice", cid)
    assert not conv.compared and conv.messages[-1].effort == "high" and len(conv.messages[-1].siblings) == 5


def test_an_earlier_message_picked_is_compared_and_the_later_ones_stay_on_their_branch(repo, synthetic_host):
    from backend.services.chat import BOTH_PICKED, NOT_ON_BRANCH

    service = ChatService(repo, synthetic_host())
    cid = list(service.send("alice", None, "What is 17 + 25?", OPTS))[-1].conversation_id
    list(service.send("alice", cid, "And 38 + 46?", OPTS))
    first, first_answer, later, _ = repo.get("alice", cid).messages
    with pytest.raises(InputError) as both:
        service.compare("alice", cid, "A new one", OPTS, at=first.id)
    assert both.value.user_message == BOTH_PICKED
    with pytest.raises(InputError) as answer:
        service.compare("alice", cid, "", OPTS, at=first_answer.id)  # an answer is not a question
    assert answer.value.user_message == NOT_ON_BRANCH
    comparison = service.compare("alice", cid, "", OPTS, at=first.id)
    assert [m.content for m in comparison.history] == ["What is 17 + 25?"]
    ended(comparison)
    conv = repo.get("alice", cid)
    assert [m.id for m in conv.messages] == [first.id]  # the branch shown ends at the question picked
    assert [m.effort for m in conv.compared] == ["medium", "low", "medium", "high"]  # its first answer too
    service.keep("alice", cid, "high")
    path = repo.get("alice", cid).messages
    assert [m.effort for m in path] == [None, "high"] and path[-1].branch_index == 4
    service.show_branch("alice", cid, first_answer.id)  # the later question is one click away, intact
    assert [m.id for m in repo.get("alice", cid).messages][:3] == [first.id, first_answer.id, later.id]


def test_stop_stops_all_three_and_each_keeps_what_it_wrote(repo, synthetic_host):
    service = ChatService(repo, synthetic_host(rate=20.0))
    comparison = service.compare("alice", None, "Think slowly", OPTS)
    cid = comparison.conversation_id
    wait_for(lambda: all(t.turn.reasoning_seen > 3 for t in comparison.watches))
    assert cid in service.writing("alice") and service.attach("alice", cid) is None  # three, not one
    with pytest.raises(InputError, match="still being written"):
        service.keep("alice", cid, "low")
    with pytest.raises(InputError, match="still being written"):
        service.compare("alice", cid, "", OPTS)
    assert service.stop("alice", cid)
    lasts = ended(comparison)
    assert [s.live.status for s in lasts] == ["stopped"] * 3
    wait_for(lambda: not service.writing("alice"))
    stored = repo.get("alice", cid).compared
    assert [m.status for m in stored] == ["stopped"] * 3 and all(m.reasoning for m in stored)


def test_a_comparison_starts_all_three_or_none(repo, synthetic_host):
    service = ChatService(repo, synthetic_host(max_active=2, max_waiting=0))
    with pytest.raises(BusyError):
        service.compare("alice", None, "Three at once?", OPTS)
    (conv,) = repo.list_conversations("alice")
    full = repo.get("alice", conv.id)
    assert [m.content for m in full.messages] == ["Three at once?"] and not full.compared  # the message is kept
    # the two slots taken were given back: answers run again
    assert list(service.send("alice", None, "One?", OPTS))[-1].live.status == "complete"


def test_a_reload_reattaches_to_all_three(repo, synthetic_host):
    service = ChatService(repo, synthetic_host(rate=40.0))
    comparison = service.compare("alice", None, "Slowly", OPTS)
    for w in comparison.watches:
        w.close()  # the page went away: the answers go on
    again = service.attach_comparison("alice", comparison.conversation_id)
    assert [w.turn.message().effort for w in again] == ["low", "medium", "high"]
    assert [list(w)[-1].live.status for w in again] == ["complete"] * 3


def test_figures_while_written_and_once_stored():
    class Turn:
        started_at, answered_at, reasoning_seen = 10.0, None, 42

    writing = MessageView(id=1, position=1, role="assistant", content="", effort="high",
                          status=MessageStatus.STREAMING)
    assert figures(writing, Turn(), now=13.5) == EffortFigures("high", 42, 3.5, 0, None, True)
    Turn.answered_at = 12.0
    assert figures(writing, Turn(), now=99.0).seconds_to_answer == 2.0  # fixed once the answer began
    done = MessageView(id=1, position=1, role="assistant", content="42", effort="low", reasoning_tokens=7, ttft=0.5,
                       reasoning_time=1.0, tokens_per_s=50.0,
                       trace=[ToolCallStep("python", "print(1)"), ToolResultStep("python", "1", seconds=2.0)])
    assert figures(done) == EffortFigures("low", 7, 3.5, 1, 50.0, False)
    assert MessageView(id=1, position=1, role="assistant", content="").seconds_to_answer is None  # no answer

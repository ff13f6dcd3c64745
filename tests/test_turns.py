"""A LiveAnswer runs on its own: subscribers come and go, the turn goes on, memory stays bounded; and the
registry of turns (backend/serving/turns.py) holds one turn per conversation, of one answer or several."""

import asyncio

import pytest

from backend.harmony.codec import PromptMessage, PromptSettings
from backend.serving.live import STREAM_INTERVAL_S, LiveAnswer, Pace
from backend.serving.saver import PartialSaver
from backend.serving.turns import Turns
from backend.serving.worker import ChatRequest
from core.errors import GenerationError, InputError
from core.records import MessageStatus, MessageView


@pytest.fixture
def start_turn(make_host):
    host = make_host()

    def start(saves, finishes, ended, pace=None):
        job = host.worker().submit(ChatRequest([PromptMessage("user", "hi")], PromptSettings(), 1.0, 400))
        live = MessageView(id=1, position=1, role="assistant", content="", status=MessageStatus.STREAMING)
        saver = PartialSaver(saves.extend, 0.01)
        return LiveAnswer("alice", "c" * 32, [], live, job, save=lambda m, **kw: saves.append(kw),
                        finish=lambda m, done: finishes.append(done.stop_reason), saver=saver,
                        on_end=ended.append, pace=pace).start()
    return start


def test_subscribers_come_and_go_and_the_turn_runs_to_its_end(start_turn):
    saves, finishes, ended = [], [], []
    turn = start_turn(saves, finishes, ended)
    for _ in range(20):  # twenty pages open and close
        watch = turn.snapshots()
        next(watch)
        watch.close()
    assert turn.watchers == 0
    last = list(turn.snapshots())[-1]
    assert last.done and last.live.content == "Hello! <b>How</b> can I help?"
    assert finishes == ["return"] and ended == [turn] and saves  # saved while streaming, then finished
    assert turn.watchers == 0


def test_updates_are_fewer_than_tokens_and_phases_show_at_once(start_turn):
    turn = start_turn([], [], [], pace=Pace(floor_s=0.2))
    snaps = list(turn.snapshots())
    assert snaps[-1].done
    assert len(snaps) < turn.version  # many tokens folded into each update
    assert any(s.live.reasoning and not s.live.content for s in snaps)  # reasoning shown before the answer


def test_a_page_on_the_event_loop_is_woken_for_phases_and_the_end_not_left_to_its_pace(start_turn):
    """With a pace that allows one update every ten minutes, an async page still sees the reasoning
    start, the answer start and the end as they happen: the turn wakes it (the test's own limit is
    only there so that a regression fails instead of hanging)."""
    turn = start_turn([], [], [], pace=Pace(floor_s=600))

    async def follow():
        return [snap async for snap in turn.snapshots()]

    snaps = asyncio.run(asyncio.wait_for(follow(), 60))
    assert snaps[-1].done and snaps[-1].live.content == "Hello! <b>How</b> can I help?"
    assert len(snaps) <= 4  # the first look, the reasoning, the answer, the end: no token by itself
    assert any(s.live.reasoning and not s.live.content for s in snaps)
    assert turn.watchers == 0 and not turn._sleepers


def test_cancel_keeps_what_was_written_as_stopped(start_turn):
    finishes = []
    turn = start_turn([], finishes, [])
    watch = turn.snapshots()
    next(watch)
    turn.cancel()
    assert list(watch)[-1].done and finishes == ["stopped"]


def test_the_more_pages_watch_the_fewer_updates_each_gets():
    pace = Pace(updates_per_s=100)
    assert pace.interval() == STREAM_INTERVAL_S
    for _ in range(40):
        pace.join()
    assert pace.interval() == pytest.approx(0.4)  # 40 pages x 2.5 updates/s = the 100/s budget
    for _ in range(40):
        pace.leave()
    assert pace.interval() == STREAM_INTERVAL_S


def test_watches_join_and_leave_the_pace(start_turn):
    pace = Pace()
    turn = start_turn([], [], [], pace=pace)
    watches = [turn.snapshots() for _ in range(3)]
    assert pace.watching == 3
    list(watches[0])  # one runs to the end
    watches[1].close()
    del watches[2]  # one is dropped
    assert pace.watching == 0


# -- backend/serving/turns.py: which conversations have answers being written ---------------------------

class Answer:
    """A LiveAnswer's surface as the registry sees it."""

    def __init__(self, owner="alice", cid="c1", watchers=0):
        self.owner, self.conversation_id, self.watchers, self.started = owner, cid, watchers, False

    def start(self):
        self.started = True


def test_a_conversation_holds_one_turn_of_one_or_several_answers():
    turns = Turns()
    with pytest.raises(RuntimeError):
        with turns.claimed("c1"):
            raise RuntimeError("the submit failed")
    with turns.claimed("c1"):  # the failure above freed the claim
        with pytest.raises(InputError, match="still being written"):
            with turns.claimed("c1"):
                pass
        answers = [Answer(), Answer(watchers=1), Answer()]
        assert turns.start("c1", answers) and all(a.started for a in answers)
    assert turns.writing("alice") == {"c1"} and turns.writing("bob") == set() and len(turns.everyone()) == 3
    assert [turns.ended(a) for a in answers] == [False, False, True]  # free once the last one ended
    assert turns.of("c1") == [] and turns.unseen("alice") == set()  # one of them was watched
    lone = Answer()
    with turns.claimed("c1"):
        turns.start("c1", [lone])
    assert turns.ended(lone) and turns.unseen("alice") == {"c1"}  # ended with nobody watching
    turns.seen("alice", "c1")
    assert turns.unseen("alice") == set()


def test_after_close_no_turn_starts():
    turns = Turns()
    with turns.claimed("c1"):
        turns.start("c1", [Answer()])
    assert len(turns.close()) == 1
    with pytest.raises(GenerationError, match="shutting down"):
        with turns.claimed("c2"):
            pass

"""A LiveTurn runs on its own: subscribers come and go, the turn goes on, memory stays bounded."""

import pytest

from backend.harmony.codec import PromptSettings, Turn
from backend.turns import LiveTurn
from backend.worker import ChatRequest
from core.records import MessageStatus, MessageView


@pytest.fixture
def start_turn(make_host):
    host = make_host()

    def start(saves, finishes, ended):
        job = host.worker().submit(ChatRequest([Turn("user", "hi")], PromptSettings(), 1.0, 400))
        live = MessageView(id=1, position=1, role="assistant", content="", status=MessageStatus.STREAMING)
        return LiveTurn("alice", "c" * 32, [], live, job, save=lambda m, **kw: saves.append(kw),
                        finish=lambda m, done: finishes.append(done.stop_reason), save_interval_s=0.01,
                        on_end=ended.append).start()
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
    turn = start_turn([], [], [])
    snaps = list(turn.snapshots(interval=0.2))
    assert snaps[-1].done
    assert len(snaps) < turn.version  # many tokens folded into each update
    assert any(s.live.reasoning and not s.live.content for s in snaps)  # reasoning shown before the answer


def test_cancel_keeps_what_was_written_as_stopped(start_turn):
    finishes = []
    turn = start_turn([], finishes, [])
    watch = turn.snapshots()
    next(watch)
    turn.cancel()
    assert list(watch)[-1].done and finishes == ["stopped"]

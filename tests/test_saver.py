"""The PartialSaver: every answer being written saved together, never over a final save."""

import threading
import time

from backend.serving.saver import PartialSaver


class FakeTurn:
    """An answer being written, at the saver's seam (what a LiveAnswer offers it)."""

    def __init__(self, owner: str, message_id: int):
        self.owner, self._id, self.version, self.text = owner, message_id, 0, ""

    @property
    def message_id(self) -> int:
        return self._id

    def partial_fields(self) -> dict:
        return {"content": self.text, "reasoning": "", "trace": []}

    def write(self, text: str) -> None:
        self.text += text
        self.version += 1


def test_one_batch_holds_every_changed_answer_and_only_those():
    batches = []
    saver = PartialSaver(batches.append, interval=3600)  # flushed by hand here
    turns = [FakeTurn("alice", i) for i in range(5)]
    for t in turns:
        saver.add(t)
    assert saver.flush() == 0  # nothing written yet
    for t in turns[:3]:
        t.write("hello")
    assert saver.flush() == 3
    assert [(owner, mid, f["content"]) for owner, mid, f in batches[-1]] == [("alice", i, "hello") for i in range(3)]
    assert saver.flush() == 0  # unchanged since: not written again
    turns[4].write("!")
    assert saver.flush() == 1 and batches[-1][0][1] == 4


def test_the_interval_saves_by_itself_and_soon_saves_at_once():
    batches = []
    saver = PartialSaver(batches.append, interval=3600)
    turn = FakeTurn("alice", 1)
    saver.add(turn)
    turn.write("the answer starts")
    saver.soon()
    deadline = time.monotonic() + 5
    while not batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batches and batches[0][0][2]["content"] == "the answer starts"


def test_removing_a_turn_waits_for_a_save_in_flight():
    entered, release, written = threading.Event(), threading.Event(), []

    def slow_write(items):
        entered.set()
        release.wait(5)
        written.append(items)

    saver = PartialSaver(slow_write, interval=3600)
    turn = FakeTurn("alice", 1)
    saver.add(turn)
    turn.write("partial")
    flushing = threading.Thread(target=saver.flush)
    flushing.start()
    entered.wait(5)
    removed = threading.Event()
    threading.Thread(target=lambda: (saver.remove(turn), removed.set())).start()
    assert not removed.wait(0.2)  # the final save must not start while an older partial one is written
    release.set()
    assert removed.wait(5) and written
    turn.write(" more")
    assert saver.flush() == 0  # removed: never saved again


def test_a_failing_write_is_logged_and_the_next_one_still_runs(caplog):
    calls = []

    def flaky(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("database is locked")

    saver = PartialSaver(flaky, interval=3600)
    turn = FakeTurn("alice", 1)
    saver.add(turn)
    turn.write("a")
    assert saver.flush() == 0 and "saving the answers being written failed" in caplog.text
    assert saver.flush() == 1  # still due, written now

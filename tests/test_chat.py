"""The chat service: store first, stream, save partial answers, stop, regenerate, edit."""

import threading
import time

import pytest

from backend.services.chat import SAVE_INTERVAL_S, ChatOptions, ChatService, clean_text
from backend.serving.host import ModelHost
from core.errors import GenerationError, InputError, NotFoundError
from tests.support.threads import in_parallel


@pytest.fixture
def service(repo, make_host):
    return ChatService(repo, make_host())


OPTS = ChatOptions(effort="high", max_new_tokens=400)


def test_a_turn_is_stored_with_reasoning_and_answer_apart(service, repo):
    snaps = list(service.send("alice", None, "hi there", OPTS))
    cid = snaps[0].conversation_id
    assert snaps[-1].done
    user, answer = repo.get("alice", cid).messages
    assert (user.role, user.content) == ("user", "hi there")
    assert answer.reasoning.startswith("The user says hi.") and "Hello!" not in answer.reasoning
    assert answer.content == "Hello! <b>How</b> can I help?"
    assert (answer.status, answer.effort, answer.stop_reason) == ("complete", "high", "return")
    assert answer.reasoning_tokens > 100 and answer.answer_tokens > 5 and answer.tokens_per_s > 0
    assert [m["channel"] for m in answer.harmony] == ["analysis", "final"]
    assert repo.get("alice", cid).title == "hi there"
    assert repo.get("alice", cid).settings["effort"] == "high"


def test_the_user_message_is_stored_before_the_model_runs(repo, codec):
    never = threading.Event()
    loading = ModelHost(lambda progress: never.wait(), codec, {})  # still loading for the whole run
    loading.start()
    service = ChatService(repo, loading)
    with pytest.raises(GenerationError, match="still loading"):
        service.send("alice", None, "are you there?", OPTS)
    conv = repo.list_conversations("alice")[0]
    assert [m.content for m in repo.get("alice", conv.id).messages] == ["are you there?"]


def test_partial_answer_is_saved_while_streaming(service, repo):
    service.save_interval_s = 0.0
    stream = service.send("alice", None, "hi", OPTS)
    snaps = [next(stream) for _ in range(3)]
    deadline, saved = time.monotonic() + 10, None
    while time.monotonic() < deadline and not (saved and saved.reasoning):
        saved = repo.get("alice", snaps[0].conversation_id).messages[1]
        time.sleep(0.01)
    assert saved.status == "streaming" and saved.reasoning  # a crash now would leave this, as "interrupted"
    stream.close()
    assert SAVE_INTERVAL_S <= 2.0


def test_stop_keeps_the_partial_answer(service, repo):
    stream = service.send("alice", None, "hi", OPTS)
    first = next(stream)
    assert service.stop("alice", first.conversation_id)
    last = list(stream)[-1]
    assert last.done and last.live.status == "stopped"
    answer = repo.get("alice", first.conversation_id).messages[1]
    assert answer.status == "stopped" and answer.stop_reason == "stopped"


def test_leaving_mid_answer_lets_the_server_finish_it(service, repo):
    stream = service.send("alice", None, "hi", OPTS)
    cid = next(stream).conversation_id
    next(stream)
    stream.close()  # the browser tab closed: the answer belongs to the server and goes on
    last = list(service.attach("alice", cid) or [])  # a page that comes back sees it to its end
    assert last and last[-1].done and last[-1].live.content == "Hello! <b>How</b> can I help?"
    answer = repo.get("alice", cid).messages[1]
    assert answer.status == "complete" and answer.content == "Hello! <b>How</b> can I help?"


def test_two_pages_watch_one_turn_and_stop_in_either_ends_both(service):
    first = service.send("alice", None, "hi", OPTS)
    cid = next(first).conversation_id
    second = service.attach("alice", cid)
    assert next(second).conversation_id == cid  # what is written so far, at once
    assert service.stop("alice", cid)
    ends = [list(first)[-1], list(second)[-1]]
    assert all(s.done and s.live.status == "stopped" for s in ends)
    assert service.attach("alice", cid) is None  # nothing in progress any more


def test_finished_unwatched_is_marked_until_opened(service):
    stream = service.send("alice", None, "hi", OPTS)
    cid = next(stream).conversation_id
    assert cid in service.writing("alice") and cid not in service.writing("bob")
    stream.close()
    deadline = time.time() + 60
    while cid in service.writing("alice") and time.time() < deadline:
        time.sleep(0.05)
    assert service.unseen("alice") == {cid} and service.unseen("bob") == set()
    assert service.attach("alice", cid) is None and service.unseen("alice") == set()  # opened: seen


def test_shutdown_saves_turns_in_progress_as_interrupted(service, repo):
    stream = service.send("alice", None, "hi", OPTS)
    cid = next(stream).conversation_id
    service.shutdown()
    answer = repo.get("alice", cid).messages[1]
    assert answer.status == "interrupted"
    with pytest.raises(GenerationError, match="shutting down"):
        service.send("alice", None, "more", OPTS)


def test_a_shutdown_while_an_answer_is_being_set_up_still_saves_it_as_interrupted(service, repo, monkeypatch):
    real_add = repo.add_user_message

    def add_then_stop(*args, **fields):
        mid = real_add(*args, **fields)
        service.shutdown()  # SIGTERM lands after the placeholder is stored, before its turn runs
        return mid

    monkeypatch.setattr(repo, "add_user_message", add_then_stop)
    snaps = list(service.send("alice", None, "hi", OPTS))
    assert snaps[-1].done
    answer = repo.get("alice", snaps[0].conversation_id).messages[1]
    assert answer.status == "interrupted"


def test_others_cannot_stop_or_continue_my_chat(service):
    cid = list(service.send("alice", None, "hi", OPTS))[0].conversation_id
    with pytest.raises(NotFoundError):
        service.stop("mallory", cid)
    with pytest.raises(NotFoundError):
        service.send("mallory", cid, "hello?", OPTS)


def test_regenerate_adds_an_answer_beside_the_others_and_each_keeps_its_own(service, repo):
    cid = list(service.send("alice", None, "hi", OPTS))[0].conversation_id
    list(service.regenerate("alice", cid, ChatOptions(effort="low", max_new_tokens=400)))
    list(service.regenerate("alice", cid, ChatOptions(effort="high", max_new_tokens=400)))
    messages = repo.get("alice", cid).messages
    assert [m.role for m in messages] == ["user", "assistant"]
    answer = messages[1]
    assert (answer.effort, answer.branch_index, len(answer.siblings)) == ("high", 3, 3)
    first = repo.tree("alice", cid).messages[1]
    assert first.effort == OPTS.effort and first.reasoning and first.reasoning_tokens  # kept whole
    service.show_branch("alice", cid, first.id)
    list(service.send("alice", cid, "and then?", OPTS))  # a follow-up goes on from the branch shown
    path = repo.get("alice", cid).messages
    assert [m.id for m in path[:2]] == [messages[0].id, first.id] and path[2].content == "and then?"
    with pytest.raises(NotFoundError):
        service.show_branch("bob", cid, first.id)


def test_edit_an_earlier_message_and_answer_from_there_keeping_the_old_branch(service, repo):
    cid = list(service.send("alice", None, "first question", OPTS))[0].conversation_id
    list(service.send("alice", cid, "second question", OPTS))
    old = repo.get("alice", cid).messages
    list(service.edit("alice", cid, 0, "better first question", OPTS))
    messages = repo.get("alice", cid).messages
    assert [m.content for m in messages if m.role == "user"] == ["better first question"]
    assert len(messages) == 2 and messages[0].siblings == [old[0].id, messages[0].id]
    with pytest.raises(InputError):
        service.edit("alice", cid, messages[1].position, "not mine", OPTS)  # an answer
    service.show_branch("alice", cid, old[0].id)
    assert [m.id for m in repo.get("alice", cid).messages] == [m.id for m in old]  # all four still there


def test_moving_between_answers_waits_for_the_answer_being_written(service, repo):
    cid = list(service.send("alice", None, "hi", OPTS))[0].conversation_id
    first = repo.get("alice", cid).messages[1].id
    watch = service.regenerate("alice", cid, ChatOptions(max_new_tokens=4000))
    with pytest.raises(InputError, match="still being written"):
        service.show_branch("alice", cid, first)
    service.stop("alice", cid)
    list(watch)
    service.show_branch("alice", cid, first)
    assert repo.get("alice", cid).messages[1].id == first


def test_bad_input_is_refused_or_cleaned():
    assert clean_text("a\x00b\x07c\td\r\ne") == "abc\td\ne"
    assert clean_text("lone \ud800 surrogate") == "lone ? surrogate"
    with pytest.raises(InputError, match="limit is 32,000"):
        clean_text("x" * 32_001)


def test_empty_and_bad_options_are_refused(service):
    with pytest.raises(InputError):
        service.send("alice", None, "  \n ", OPTS)
    with pytest.raises(InputError, match="effort"):
        service.send("alice", None, "hi", ChatOptions(effort="max"))
    with pytest.raises(InputError, match="Temperature"):
        service.send("alice", None, "hi", ChatOptions(temperature=9))


def test_two_chats_at_once_are_both_stored(service, repo):
    def chat(name):
        return list(service.send(name, None, f"hi from {name}", OPTS))[-1]

    last = dict(zip(("alice", "bob"), in_parallel(chat, [("alice",), ("bob",)])))
    for name in ("alice", "bob"):
        conv = repo.get(name, last[name].conversation_id)
        assert conv.messages[1].status == "complete" and conv.messages[0].content == f"hi from {name}"


def test_one_answer_at_a_time_per_conversation(service):
    stream = service.send("alice", None, "hi", OPTS)
    cid = next(stream).conversation_id
    with pytest.raises(InputError, match="still being written"):
        service.send("alice", cid, "and another", OPTS)
    stream.close()
    list(service.attach("alice", cid) or [])  # the first answer runs to its end, page or not
    list(service.send("alice", cid, "and another", OPTS))  # fine once the first one ended



def test_two_tabs_sending_at_the_same_instant_get_one_answer(service, repo):
    cid = repo.create_conversation("alice", "race")
    start = threading.Barrier(6)

    def tab(i):
        start.wait()
        try:
            return "ok", list(service.send("alice", cid, f"tab {i}", OPTS))[-1].done
        except InputError as exc:
            return "busy", exc.user_message

    outcomes = in_parallel(tab, [(i,) for i in range(6)])
    answered = [o for o in outcomes if o[0] == "ok"]
    assert answered and len(answered) + len([o for o in outcomes if o[0] == "busy"]) == 6
    messages = repo.get("alice", cid).messages
    assert len([m for m in messages if m.role == "assistant"]) == len(answered)  # never two at once
    list(service.send("alice", cid, "later", OPTS))  # and the claim is free again


def test_a_failed_placeholder_save_gives_the_worker_slot_back(service, repo, monkeypatch):
    worker = service.host.worker()
    cid = list(service.send("alice", None, "hello", OPTS))[0].conversation_id
    real_add = repo.add_user_message

    def failing_add(*args, answer=None, **fields):
        if answer is not None:
            raise RuntimeError("disk full")
        return real_add(*args, answer=answer, **fields)

    monkeypatch.setattr(repo, "add_user_message", failing_add)
    with pytest.raises(RuntimeError):
        service.send("alice", cid, "more", OPTS)
    assert worker.active == 0 and worker.waiting == 0
    monkeypatch.setattr(repo, "add_user_message", real_add)
    assert list(service.send("alice", cid, "again", OPTS))[-1].done  # not stuck as "still being written"


@pytest.mark.parametrize("field, value, says", [
    ("temperature", float("nan"), "Temperature must be a number"),
    ("temperature", "warm", "Temperature must be a number"),
    ("temperature", None, "Temperature must be a number"),
    ("max_new_tokens", float("nan"), "Max new tokens must be a number"),
    ("max_new_tokens", "lots", "Max new tokens must be a number"),
    ("max_new_tokens", 10**9, "Max new tokens must be a number"),
    ("effort", None, "Reasoning effort must be one of")])
def test_every_bad_option_gets_a_sentence(field, value, says):
    from dataclasses import replace

    from backend.services.options import check_options

    with pytest.raises(InputError, match=says):
        check_options(replace(OPTS, **{field: value}))


def test_a_conversation_longer_than_the_window_leaves_out_its_oldest_messages_and_says_so(repo, codec, forced_engine):
    """#38: the engine holds 1,024 tokens here. The conversation keeps working: each answer's prompt leaves
    out as few of the oldest messages as make room, the answer says how many and how much context it used;
    a message that alone cannot fit is refused with both numbers and is still stored."""
    from backend.serving.host import ModelHost
    from core.errors import ContextLengthError
    from ui.render import stats_line

    host = ModelHost(forced_engine(num_blocks=4), codec, {})
    host.start(background=False)
    try:  # closed at the end: its batching loop is a thread that would keep the test process alive
        service = ChatService(repo, host)
        long = " ".join(f"fact{i}" for i in range(120))  # ~300 tokens
        cid, answers = None, []
        for turn in range(4):
            snaps = list(service.send("alice", cid, f"Remember {turn}: {long}", ChatOptions(max_new_tokens=300)))
            cid = snaps[0].conversation_id
            answers.append(repo.get("alice", cid).messages[-1])
        first, last = answers[0], answers[-1]
        assert first.left_out is None and first.context_window == 1024 and 0 < first.context_tokens <= 1024
        assert last.status == "complete" and last.left_out >= 2 and last.context_tokens <= 1024
        assert f"the {last.left_out} earliest messages not in the model's context" in stats_line(last)
        assert "context " in stats_line(last) and " / 1.0k tokens" in stats_line(last)
        with pytest.raises(ContextLengthError, match="1,024"):
            list(service.send("alice", cid, " ".join(f"w{i}" for i in range(1500)), ChatOptions(max_new_tokens=300)))
        assert repo.get("alice", cid).messages[-1].content.startswith("w0 w1")  # the message was kept
    finally:
        host.close()


def test_a_malformed_completion_is_stored_as_such_and_the_page_says_so(repo, make_host):
    """The model writing no harmony header (`<|message|>` straight away): what could be read is the answer,
    no control token shows, and the answer says its output was malformed (#35)."""
    from ui.render import assistant_messages

    service = ChatService(repo, make_host("<|message|>Just an answer<|return|>"))
    cid = list(service.send("alice", None, "hi", OPTS))[0].conversation_id
    answer = repo.get("alice", cid).messages[-1]
    assert answer.content == "Just an answer" and answer.malformed is True and answer.status == "complete"
    shown = " ".join(str(row.content) for row in assistant_messages(answer))
    assert "malformed" in shown and "<|" not in shown


def test_a_well_formed_answer_says_nothing_of_it(service, repo):
    cid = list(service.send("alice", None, "hi there", OPTS))[0].conversation_id
    assert repo.get("alice", cid).messages[-1].malformed is False

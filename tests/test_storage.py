"""The storage layer on SQLite: nothing lost, owners kept apart, migrations tested."""

import json

import pytest
from sqlalchemy import inspect, text

from core.errors import NotFoundError
from core.trace import PreambleStep, ToolCallStep, ToolResultStep, from_json
from storage.db import downgrade, open_engine, upgrade
from storage.repository import Repository
from storage.schema import Base
from tests.support.old_schema import old_conversation
from tests.support.threads import in_parallel


def test_create_append_and_read_back(repo):
    cid = repo.create_conversation("alice", "What is   the\nboiling point of water at altitude? " * 3)
    assert len(cid) == 32 and len(repo.get("alice", cid).title) <= 60
    repo.add_message("alice", cid, "user", "hello")
    mid = repo.add_message("alice", cid, "assistant", "", reasoning="", status="streaming", effort="high")
    repo.save_message("alice", mid, content="Hi!", reasoning="greet", status="complete", ttft=0.1,
                      reasoning_tokens=3, answer_tokens=2, tokens_per_s=50.0, trace=[PreambleStep()],
                      harmony=[{"role": "assistant"}])
    conv = repo.get("alice", cid)
    assert [(m.position, m.role, m.content) for m in conv.messages] == [(0, "user", "hello"), (1, "assistant", "Hi!")]
    answer = conv.messages[1]
    assert (answer.reasoning, answer.effort, answer.status, answer.trace) == ("greet", "high", "complete",
                                                                            [PreambleStep()])


def test_list_newest_first(repo):
    a = repo.create_conversation("alice", "first")
    b = repo.create_conversation("alice", "second")
    repo.add_message("alice", a, "user", "bump")  # a is now the most recently updated
    assert [c.id for c in repo.list_conversations("alice")] == [a, b]
    assert repo.list_titles("alice") == [(a, "first"), (b, "second")] and repo.list_titles("bob") == []


def test_interrupted_on_restart(url):
    repo = Repository.open(url)
    cid = repo.create_conversation("alice", "crash")
    repo.add_message("alice", cid, "user", "tell me a story")
    mid = repo.add_message("alice", cid, "assistant", "", status="streaming")
    repo.save_message("alice", mid, content="Once upon a", reasoning="a story")  # periodic save while streaming
    # the process dies here; a new one opens the same database
    repo2 = Repository.open(url)
    answer = repo2.get("alice", cid).messages[1]
    assert (answer.status, answer.content, answer.reasoning) == ("interrupted", "Once upon a", "a story")


def test_owners_never_see_each_other(repo):
    cid = repo.create_conversation("alice", "secret")
    mid = repo.add_message("alice", cid, "user", "my secret plan")
    for action in (lambda: repo.get("bob", cid), lambda: repo.rename("bob", cid, "x"),
                   lambda: repo.last_message("bob", cid), lambda: repo.save_message("bob", mid, content="x"),
                   lambda: repo.delete("bob", cid), lambda: repo.add_message("bob", cid, "user", "x"),
                   lambda: repo.export_json("bob", cid), lambda: repo.show_branch("bob", cid, mid),
                   lambda: repo.tree("bob", cid)):
        with pytest.raises(NotFoundError):
            action()
    assert repo.list_conversations("bob") == []
    assert repo.search("bob", "secret plan") == []
    assert repo.get("alice", cid).messages[0].content == "my secret plan"
    assert repo.last_message("alice", cid).content == "my secret plan"


def test_last_message_reads_the_newest_only(repo):
    cid = repo.create_conversation("alice", "chat")
    assert repo.last_message("alice", cid) is None
    repo.add_message("alice", cid, "user", "first")
    mid = repo.add_message("alice", cid, "assistant", "", stop_reason="call", trace=[ToolCallStep()])
    last = repo.last_message("alice", cid)
    assert (last.id, last.role, last.stop_reason, last.trace) == (mid, "assistant", "call", [ToolCallStep()])


@pytest.mark.parametrize("bad", ["", "nope", "../etc/passwd", "0" * 31, "' OR 1=1 --", None, 42])
def test_malformed_ids_are_not_found(repo, bad):
    with pytest.raises(NotFoundError):
        repo.get("alice", bad)


def test_rename_and_delete(repo):
    cid = repo.create_conversation("alice", "old")
    for i in range(4):
        repo.add_message("alice", cid, "user" if i % 2 == 0 else "assistant", f"m{i}")
    repo.rename("alice", cid, "new title")
    conv = repo.get("alice", cid)
    assert conv.title == "new title" and [m.content for m in conv.messages] == ["m0", "m1", "m2", "m3"]
    repo.delete("alice", cid)
    with pytest.raises(NotFoundError):
        repo.get("alice", cid)


def test_full_text_search(repo):
    cid = repo.create_conversation("alice", "weather")
    repo.add_message("alice", cid, "user", "Is it raining in Paris?")
    mid = repo.add_message("alice", cid, "assistant", "", status="streaming")
    repo.save_message("alice", mid, content="Bring an umbrella.", reasoning="Paris forecast says drizzle")
    assert {h.message_id for h in repo.search("alice", "umbrella")} == {mid}
    assert repo.search("alice", "drizzle") == []  # reasoning only when asked
    assert [h.message_id for h in repo.search("alice", "drizzle", include_reasoning=True)] == [mid]
    assert "[umbrella]" in repo.search("alice", "umbrella")[0].snippet
    assert repo.search("alice", 'umbrella" OR "x') == []  # user text is never FTS syntax
    assert repo.search("alice", "   ") == []


def test_plain_search_fallback(repo):
    repo.fts = False  # what a PostgreSQL database uses
    cid = repo.create_conversation("alice", "w")
    repo.add_message("alice", cid, "user", "100% sure_thing")
    repo.add_message("alice", cid, "assistant", "Bring an umbrella.", reasoning="Paris forecast says drizzle")
    assert len(repo.search("alice", "100% sure_")) == 1
    assert repo.search("alice", "50%") == [] and repo.search("bob", "sure") == []
    assert repo.search("alice", "DRIZZLE") == [] and len(repo.search("alice", "DRIZZLE", include_reasoning=True)) == 1


def test_export_json_and_markdown(repo):
    cid = repo.create_conversation("alice", "export me")
    repo.add_message("alice", cid, "user", "2+2?")
    repo.add_message("alice", cid, "assistant", "4", reasoning="simple sum", harmony=[{"channel": "final"}],
                     status="stopped")
    data = repo.export_json("alice", cid)
    json.dumps(data)  # serializable as is
    assert data["messages"][1]["harmony"] == [{"channel": "final"}]
    md = repo.export_markdown("alice", cid)
    assert "# export me" in md and "simple sum" in md and "*(stopped)*" in md
    assert "simple sum" not in repo.export_markdown("alice", cid, include_reasoning=False)


def test_exports_carry_the_steps_in_order(repo):
    cid = repo.create_conversation("alice", "agent")
    trace = [{"kind": "reasoning", "start": 0, "end": 9, "seconds": 1.0},
             {"kind": "tool_call", "recipient": "python", "arguments": "print(6*7)"},
             {"kind": "tool_result", "recipient": "python", "output": "42", "status": "ok", "seconds": 0.2}]
    repo.add_message("alice", cid, "assistant", "It is 42.", reasoning="Use code.", trace=from_json(trace))
    exported = repo.export_json("alice", cid)["messages"][0]["trace"]
    assert [{k: e[k] for k in want} for e, want in zip(exported, trace)] == trace  # as JSON, every field named
    md = repo.export_markdown("alice", cid)
    assert md.index("Use code.") < md.index("Ran python · 0.2 s") < md.index("print(6*7)") < md.index("It is 42.")
    assert "Use code." not in repo.export_markdown("alice", cid, include_reasoning=False)
    assert "print(6*7)" in repo.export_markdown("alice", cid, include_reasoning=False)


def test_many_writers_never_hit_database_is_locked(repo):
    ids = [repo.create_conversation("alice", f"c{i}") for i in range(8)]
    errors = []

    def writer(cid):
        try:
            mid = repo.add_message("alice", cid, "assistant", "", status="streaming")
            for k in range(30):
                repo.save_message("alice", mid, content="x" * k)
        except Exception as exc:  # noqa: BLE001 - the test collects any failure
            errors.append(exc)

    in_parallel(writer, [(cid,) for cid in ids])
    assert errors == []
    assert all(repo.get("alice", cid).messages[0].content == "x" * 29 for cid in ids)


def test_migrations_from_blank_match_the_models(url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = open_engine(url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # FTS5's own shadow tables are not in the models; everything else must match.
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name.startswith(("messages_fts", "documents_fts")))]
    assert diff == []
    assert {"conversations", "messages", "messages_fts"} <= set(inspect(engine).get_table_names())


def test_migrations_down_and_up_again(url):
    engine = open_engine(url)
    upgrade(engine)
    downgrade(engine, "base")
    assert "messages" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "messages" in inspect(engine).get_table_names()


def test_wal_mode(repo):
    with repo.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_failed_query_never_carries_its_values(url):
    """A database error is logged with its statement, never with the user's words in it."""
    from sqlalchemy import text

    from storage.db import open_engine

    engine = open_engine(url)
    with pytest.raises(Exception) as failed, engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table WHERE x = :secret"), {"secret": "my diary words"})
    assert "my diary words" not in str(failed.value)


def test_partial_saves_are_one_batch_and_only_into_the_owners_messages(repo):
    a = repo.create_conversation("alice", "a")
    b = repo.create_conversation("bob", "b")
    ma = repo.add_message("alice", a, "assistant", "", status="streaming")
    mb = repo.add_message("bob", b, "assistant", "", status="streaming")
    repo.save_partials([("alice", ma, {"content": "Once", "reasoning": "think", "trace": [PreambleStep()]}),
                        ("alice", mb, {"content": "hijacked", "reasoning": "", "trace": []}),  # not alice's
                        ("bob", mb, {"content": "Hi", "reasoning": "", "trace": []})])
    saved = repo.get("alice", a).messages[0]
    assert (saved.content, saved.reasoning, saved.trace, saved.status) == ("Once", "think", [PreambleStep()],
                                                                           "streaming")
    assert repo.get("bob", b).messages[0].content == "Hi"


def test_a_user_message_starts_or_continues_a_conversation_in_one_step(repo):
    cid = repo.new_conversation_id()
    first = repo.add_user_message("alice", cid, "Plan a\ntrip to Lyon", {"effort": "low"}, new=True)
    conv = repo.get("alice", cid)
    assert conv.messages[0].id == first  # without an answer: the message's own id
    assert (conv.title, conv.settings) == ("Plan a trip to Lyon", {"effort": "low"})  # titled by its first words
    assert [m.content for m in conv.messages] == ["Plan a\ntrip to Lyon"]
    mid = repo.add_user_message("alice", cid, "By train?", {"effort": "high"},
                                answer={"status": "streaming", "effort": "high"})
    again = repo.get("alice", cid)
    assert [(m.position, m.role, m.status) for m in again.messages][1:] == [(1, "user", "complete"),
                                                                          (2, "assistant", "streaming")]
    assert again.messages[-1].id == mid and again.settings == {"effort": "high"}
    with pytest.raises(NotFoundError):
        repo.add_user_message("bob", cid, "mine now", {})
    with pytest.raises(NotFoundError):
        repo.check_owner("bob", cid)
    repo.check_owner("alice", cid)
    assert len(repo.get("alice", cid).messages) == 3  # bob's message was never stored


def test_migration_to_steps_keeps_answers_and_makes_tool_calls_searchable(url):
    """0002 -> 0003: answers stored before steps existed stay readable, their tool calls searchable."""
    engine = open_engine(url)
    upgrade(engine, "0002")
    trace = json.dumps([{"kind": "tool_call", "recipient": "functions.get_weather",
                         "arguments": '{"city": "Reykjavik"}'}])
    with engine.begin() as conn:  # a database written before tools ran
        old_conversation(conn, "b" * 32, "Weather")
        conn.execute(text("INSERT INTO messages (conversation_id, position, role, content, reasoning, trace, "
                          "harmony, status, created) VALUES ('" + "b" * 32 + "', 0, 'assistant', 'Let me check.', "
                          "'The user wants weather.', :trace, '[]', 'complete', '2026-01-01 00:00:00')"),
                     {"trace": trace})
    repo = Repository.open(url)  # upgrades to head
    (m,) = repo.get("alice", "b" * 32).messages
    assert (m.content, m.reasoning, m.trace) == ("Let me check.", "The user wants weather.", from_json(json.loads(trace)))
    assert [h.conversation_id for h in repo.search("alice", "Reykjavik")] == ["b" * 32]
    assert repo.search("alice", "wants") == [] and repo.search("alice", "wants", include_reasoning=True)
    downgrade(engine, "0002")
    assert "documents" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT content FROM messages")).scalar() == "Let me check."


def test_tool_results_are_searchable(repo):
    cid = repo.create_conversation("alice", "t")
    mid = repo.add_message("alice", cid, "assistant", "done")
    repo.save_message("alice", mid, trace=[ToolCallStep("python", "print(6*7)"),
                                           ToolResultStep("python", "forty-two")])
    assert [h.message_id for h in repo.search("alice", "forty-two")] == [mid]
    assert repo.search("bob", "forty-two") == []


def test_migration_to_keys_and_audit_keeps_conversations(url):
    """0003 -> 0004: the api_keys and audit_log tables arrive; what was stored stays; down and up again."""
    from storage.api_keys import ApiKeys
    from storage.audit import AuditStore

    engine = open_engine(url)
    upgrade(engine, "0003")
    with engine.begin() as conn:
        old_conversation(conn, "c" * 32)
    repo = Repository.open(url)  # upgrades to head
    assert repo.get("alice", "c" * 32).title == "Old"
    key, _ = ApiKeys(repo).create("alice")
    AuditStore(repo).append("alice", "send", conversation_id="c" * 32)
    assert ApiKeys(repo).owner_of(key) == "alice" and AuditStore(repo).entries()[0].action == "send"
    downgrade(engine, "0003")
    assert {"api_keys", "audit_log"}.isdisjoint(inspect(engine).get_table_names())
    upgrade(engine)
    assert repo.get("alice", "c" * 32).title == "Old" and ApiKeys(repo).owner_of(key) is None


def test_migration_to_stored_responses_keeps_conversations(url):
    """0005 -> 0006: the api_responses table arrives; what was stored stays; a stored response dies with its
    conversation; down and up again."""
    from storage.responses import ResponseStore, new_response_id

    engine = open_engine(url)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        old_conversation(conn, "d" * 32)
    repo = Repository.open(url)  # upgrades to head
    assert repo.get("alice", "d" * 32).title == "Old"
    mid = repo.add_message("alice", "d" * 32, "assistant", "an answer")
    store, rid = ResponseStore(repo), new_response_id()
    store.save(rid, "alice", "d" * 32, mid, {"id": rid, "output": []})
    assert store.get("alice", rid).body["id"] == rid
    with pytest.raises(NotFoundError):
        store.get("bob", rid)
    repo.delete("alice", "d" * 32)
    with pytest.raises(NotFoundError):
        store.get("alice", rid)
    downgrade(engine, "0005")
    assert "api_responses" not in inspect(engine).get_table_names()
    upgrade(engine)


def test_migration_to_context_figures_keeps_answers(url):
    """0006 -> 0007: answers gain what context they used and how many messages were left out of it; an
    answer stored before has neither (shown without them); down and up again."""
    engine = open_engine(url)
    upgrade(engine, "0006")
    with engine.begin() as conn:
        old_conversation(conn, "e" * 32)
    old = Repository.open(url)  # upgrades to head
    mid = old.add_message("alice", "e" * 32, "assistant", "an answer")
    [before] = old.get("alice", "e" * 32).messages
    assert (before.context_tokens, before.context_window, before.left_out) == (None, None, None)
    old.save_message("alice", mid, context_tokens=1200, context_window=32768, left_out=3)
    [after] = old.get("alice", "e" * 32).messages
    assert (after.context_tokens, after.context_window, after.left_out) == (1200, 32768, 3)
    downgrade(engine, "0006")
    assert "left_out" not in {c["name"] for c in inspect(engine).get_columns("messages")}
    upgrade(engine)
    assert old.get("alice", "e" * 32).messages[0].content == "an answer"


def test_migration_to_the_malformed_flag_keeps_answers(url):
    """0008 -> 0009: answers gain whether their model output was partly not harmony; one stored before is
    unknown (None: no note shown); down and up again."""
    engine = open_engine(url)
    upgrade(engine, "0008")
    with engine.begin() as conn:
        old_conversation(conn, "f" * 32)
    repo = Repository.open(url)  # upgrades to head
    mid = repo.add_message("alice", "f" * 32, "assistant", "an answer")
    assert repo.get("alice", "f" * 32).messages[0].malformed is None
    repo.save_message("alice", mid, malformed=True)
    assert repo.get("alice", "f" * 32).messages[0].malformed is True
    downgrade(engine, "0008")
    assert "malformed" not in {c["name"] for c in inspect(engine).get_columns("messages")}
    upgrade(engine)
    assert repo.get("alice", "f" * 32).messages[0].content == "an answer"

"""The same storage on PostgreSQL: migrations, repository, shares, a chat turn.

Runs when GPT_OSS_CHAT_TEST_DATABASE_URL names a PostgreSQL server whose user may create
databases (.ci/run starts one); each test gets a database of its own, dropped afterwards.
"""

import os
import secrets
import threading

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from backend.errors import NotFoundError
from storage.db import downgrade, open_engine, upgrade
from storage.repository import Repository
from storage.schema import Base
from storage.shares import Shares

SERVER = os.environ.get("GPT_OSS_CHAT_TEST_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(not SERVER.startswith("postgresql"),
                                reason="set GPT_OSS_CHAT_TEST_DATABASE_URL to a PostgreSQL URL (.ci/run starts one)")


@pytest.fixture
def pg_url():
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    name = "chat_" + secrets.token_hex(6)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrations_from_blank_match_the_models(pg_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = open_engine(pg_url)
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    downgrade(engine, "base")
    assert "messages" not in inspect(engine).get_table_names()
    engine.dispose()


def test_upgrade_from_the_previous_schema_keeps_data(pg_url):
    engine = open_engine(pg_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO conversations VALUES ('" + "b" * 32 + "', 'alice', 'Old', now(), now(), '{}')"))
        conn.execute(text("INSERT INTO messages (conversation_id, position, role, content, reasoning, trace, harmony, "
                          "status, created) VALUES ('" + "b" * 32 + "', 0, 'user', 'old words', '', '[]', '[]', "
                          "'complete', now())"))
    repo = Repository.open(pg_url)
    assert repo.get("alice", "b" * 32).messages[0].content == "old words"
    link = Shares(repo).create("alice", "b" * 32, "1 day", include_reasoning=True)
    assert Shares(repo).open(link.token).messages[0].content == "old words"
    repo.engine.dispose()
    engine.dispose()


def test_repository_and_shares(pg_url):
    repo = Repository.open(pg_url)
    assert not repo.fts  # PostgreSQL searches with ILIKE
    cid = repo.create_conversation("alice", "Everest")
    repo.add_message("alice", cid, "user", "Boiling point on Everest? 100% sure_")
    mid = repo.add_message("alice", cid, "assistant", "", status="streaming")
    repo.save_message("alice", mid, content="About 70 °C.", reasoning="lower pressure")
    assert Repository.open(pg_url).get("alice", cid).messages[1].status == "interrupted"  # restart
    assert [h.conversation_id for h in repo.search("alice", "100% sure_")] == [cid]
    assert repo.search("alice", "pressure") == [] and len(repo.search("alice", "pressure", True)) == 1
    assert repo.search("bob", "Everest") == [] and repo.list_conversations("bob") == []
    with pytest.raises(NotFoundError):
        repo.get("bob", cid)
    shares = Shares(repo)
    link = shares.create("alice", cid)
    assert shares.open(link.token).messages[1].reasoning == ""
    shares.revoke("alice", link.token)
    with pytest.raises(NotFoundError):
        shares.open(link.token)
    repo.delete("alice", cid)
    repo.engine.dispose()


def test_many_writers(pg_url):
    repo = Repository.open(pg_url)
    ids = [repo.create_conversation("alice", f"c{i}") for i in range(8)]
    errors = []

    def writer(cid):
        try:
            mid = repo.add_message("alice", cid, "assistant", "", status="streaming")
            for k in range(20):
                repo.save_message("alice", mid, content="x" * k)
        except Exception as exc:  # noqa: BLE001 - the test collects any failure
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(cid,)) for cid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and all(repo.get("alice", c).messages[0].content == "x" * 19 for c in ids)
    repo.engine.dispose()


def test_a_chat_turn_on_postgresql(pg_url, make_host):
    from backend.chat import ChatOptions, ChatService

    repo = Repository.open(pg_url)
    snaps = list(ChatService(repo, make_host()).send("alice", None, "hi there", ChatOptions(max_new_tokens=400)))
    user, answer = repo.get("alice", snaps[-1].conversation_id).messages
    assert user.content == "hi there" and answer.status == "complete" and answer.reasoning and answer.content
    repo.engine.dispose()

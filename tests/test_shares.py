"""Share links in storage: snapshots, expiry, revoke, copy, and the 0001 -> 0002 migration."""

import datetime as dt

import pytest
from sqlalchemy import inspect, text

from core.errors import LINK_GONE as GONE
from core.errors import InputError, NotFoundError
from storage.db import downgrade, open_engine, upgrade
from storage.repository import Repository
from storage.shares import Shares
from tests.support.old_schema import old_conversation


@pytest.fixture
def shares(repo):
    return Shares(repo)


def chat(repo, owner="alice"):
    cid = repo.create_conversation(owner, "Boiling point")
    repo.add_message(owner, cid, "user", "At what temperature does water boil on Everest?")
    repo.add_message(owner, cid, "assistant", "About 70 °C.", reasoning="lower pressure, about 0.34 atm",
                     harmony=[{"channel": "analysis", "content": "lower pressure"}], reasoning_tokens=12,
                     effort="high", status="complete")
    return cid


def test_token_is_long_and_random(repo, shares):
    cid = chat(repo)
    a, b = shares.create("alice", cid), shares.create("alice", cid)
    assert a.token != b.token and len(a.token) >= 32  # 192 bits, URL-safe


def test_reasoning_is_left_out_unless_asked(repo, shares):
    cid = chat(repo)
    plain = shares.open(shares.create("alice", cid).token)
    assert [m.content for m in plain.messages] == ["At what temperature does water boil on Everest?",
                                                   "About 70 °C."]
    assert not plain.include_reasoning
    assert all(m.reasoning == "" and m.harmony == [] for m in plain.messages)
    with_reasoning = shares.open(shares.create("alice", cid, include_reasoning=True).token)
    assert with_reasoning.messages[1].reasoning == "lower pressure, about 0.34 atm"


def test_snapshot_does_not_follow_later_messages(repo, shares):
    cid = chat(repo)
    link = shares.create("alice", cid)
    repo.add_message("alice", cid, "user", "something private added later")
    repo.add_message("alice", cid, "assistant", "", status="streaming")
    assert len(shares.open(link.token).messages) == 2


def test_expiry_and_revoke(repo, shares):
    cid = chat(repo)
    t0 = dt.datetime(2026, 1, 1)
    hour = shares.create("alice", cid, "1 hour", now=t0)
    never = shares.create("alice", cid, "never", now=t0)
    assert shares.open(hour.token, now=t0 + dt.timedelta(minutes=59)).title == "Boiling point"
    with pytest.raises(NotFoundError, match=GONE):
        shares.open(hour.token, now=t0 + dt.timedelta(hours=1, seconds=1))
    assert [s.token for s in shares.list("alice", now=t0 + dt.timedelta(days=2))] == [never.token]
    shares.revoke("alice", never.token)
    with pytest.raises(NotFoundError, match=GONE):
        shares.open(never.token)
    assert shares.list("alice") == []


def test_only_the_owner_shares_lists_and_revokes(repo, shares):
    cid = chat(repo)
    with pytest.raises(NotFoundError):
        shares.create("bob", cid)
    link = shares.create("alice", cid)
    assert shares.list("bob") == []
    with pytest.raises(NotFoundError):
        shares.revoke("bob", link.token)
    assert shares.open(link.token).messages  # still works


@pytest.mark.parametrize("bad", ["", "x", "a" * 65, "../../etc", "' OR 1=1 --", None, 7])
def test_bad_tokens_are_gone(shares, bad):
    with pytest.raises(NotFoundError, match=GONE):
        shares.open(bad)


def test_bad_requests(repo, shares):
    with pytest.raises(InputError):
        shares.create("alice", chat(repo), expiry="forever")
    with pytest.raises(InputError):
        shares.create("alice", repo.create_conversation("alice", "empty"))


def test_copy_into_a_new_chat(repo, shares):
    cid = chat(repo)
    link = shares.create("alice", cid)
    new = shares.copy("bob", link.token)
    copied = repo.get("bob", new)
    assert copied.title == "Boiling point" and [m.content for m in copied.messages][1] == "About 70 °C."
    assert copied.messages[1].reasoning == "" and copied.messages[1].effort == "high"
    with pytest.raises(NotFoundError):
        repo.get("bob", cid)  # the original stays alice's


def test_deleting_the_conversation_ends_its_links(repo, shares):
    cid = chat(repo)
    link = shares.create("alice", cid)
    repo.delete("alice", cid)
    with pytest.raises(NotFoundError, match=GONE):
        shares.open(link.token)


def test_migration_from_the_previous_schema_keeps_data(url):
    engine = open_engine(url)
    upgrade(engine, "0001")
    assert "shares" not in inspect(engine).get_table_names()
    with engine.begin() as conn:  # a database written by the first release
        old_conversation(conn, "a" * 32, "Old chat")
        conn.execute(text("INSERT INTO messages (conversation_id, position, role, content, reasoning, trace, "
                          "harmony, status, created) VALUES ('" + "a" * 32 + "', 0, 'user', 'old words', '', "
                          "'[]', '[]', 'complete', '2026-01-01 00:00:00')"))
    repo = Repository.open(url)  # upgrades to head
    assert "shares" in inspect(engine).get_table_names()
    assert repo.get("alice", "a" * 32).messages[0].content == "old words"
    assert repo.search("alice", "old words")[0].conversation_id == "a" * 32
    link = Shares(repo).create("alice", "a" * 32)
    assert Shares(repo).open(link.token).messages[0].content == "old words"
    downgrade(engine, "0001")
    assert "shares" not in inspect(engine).get_table_names()
    with engine.connect() as conn:  # read as the first release would (the models are newer than 0001)
        assert conn.execute(text("SELECT title FROM conversations")).scalar() == "Old chat"

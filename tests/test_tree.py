"""Conversations as trees (storage/tree.py, the repository's branches, migration 0008): every answer and
every edit is kept, one branch is shown and remembered. The repository tests run on PostgreSQL too
(tests/test_postgres.py)."""

import json
from types import SimpleNamespace as Row

import pytest
from sqlalchemy import inspect, text

from core.errors import NotFoundError
from storage.db import downgrade, open_engine, upgrade
from storage.repository import Repository
from storage.tree import Tree
from tests.support.old_schema import old_conversation


def test_paths_siblings_and_newest_leaves():
    #   1 ─ 2 ─ 3        (3 and 4: two answers to 2; 5: an edit of 2, answered by 6)
    #     ├ 5 ─ 6   └ 4
    rows = [Row(id=i, parent_id=p, position=i) for i, p in ((1, None), (2, 1), (3, 2), (4, 2), (5, 1), (6, 5))]
    tree = Tree.of(rows)
    assert tree.path(3) == [1, 2, 3] and tree.path(6) == [1, 5, 6]
    assert tree.siblings(3) == [3, 4] and tree.siblings(5) == [2, 5] and tree.siblings(1) == [1]
    assert tree.newest_leaf(2) == 4 and tree.newest_leaf(None) == 6 and tree.newest_leaf(6) == 6
    assert tree.path(99) == [1, 5, 6]  # a leaf that is gone: the newest branch
    assert Tree.of([]).path(None) == []


def _chat(repo, owner="alice"):
    """A user message and its answer, through the page's one-transaction path."""
    cid = repo.new_conversation_id()
    first = repo.add_user_message(owner, cid, "What is 17 + 25?", {}, new=True, answer={"status": "streaming"})
    repo.save_message(owner, first, content="42", reasoning="add them", status="complete", reasoning_tokens=5)
    return cid, first


def test_every_answer_is_kept_and_the_branch_shown_is_remembered(repo):
    cid, first = _chat(repo)
    [user, answer] = repo.get("alice", cid).messages
    second = repo.add_message("alice", cid, "assistant", "forty-two", parent=user.id, reasoning="again")
    conv = repo.get("alice", cid)
    assert [m.content for m in conv.messages] == ["What is 17 + 25?", "forty-two"]
    assert conv.messages[1].siblings == [first, second] and conv.messages[1].branch_index == 2
    assert conv.leaf_id == second and repo.last_message("alice", cid).id == second
    # Back to the first answer: it kept its reasoning and figures, and a follow-up goes on from it.
    assert repo.show_branch("alice", cid, first) == first
    shown = repo.get("alice", cid).messages[1]
    assert (shown.content, shown.reasoning, shown.reasoning_tokens, shown.branch_index) == ("42", "add them", 5, 1)
    follow = repo.add_user_message("alice", cid, "And 1 more?", {}, answer={"status": "streaming"})
    assert [m.content for m in repo.get("alice", cid).messages] == ["What is 17 + 25?", "42", "And 1 more?", ""]
    assert repo.get("alice", cid).leaf_id == follow
    # Moving to a sibling shows its newest branch below it; a fresh open shows the branch last shown.
    repo.show_branch("alice", cid, second)
    assert [m.content for m in Repository(repo.engine).get("alice", cid).messages] == ["What is 17 + 25?", "forty-two"]
    repo.show_branch("alice", cid, first)
    assert repo.get("alice", cid).messages[-1].id == follow
    # The branch up to any message, and only the owner's messages.
    assert [m.id for m in repo.get("alice", cid, upto=first).messages][-1] == first
    with pytest.raises(NotFoundError):
        repo.show_branch("alice", cid, 10**9)
    with pytest.raises(NotFoundError):
        repo.get("bob", cid, upto=first)
    other, _ = _chat(repo, "bob")
    with pytest.raises(NotFoundError):
        repo.show_branch("bob", other, first)  # alice's message, named in bob's conversation


def test_edits_are_siblings_of_the_message_they_edit(repo):
    cid, _ = _chat(repo)
    user = repo.get("alice", cid).messages[0]
    edited = repo.add_message("alice", cid, "user", "What is 17 + 26?", parent=user.parent_id)
    repo.add_message("alice", cid, "assistant", "43")
    conv = repo.get("alice", cid)
    assert [m.content for m in conv.messages] == ["What is 17 + 26?", "43"]
    assert conv.messages[0].siblings == [user.id, edited] and conv.messages[0].parent_id is None
    repo.show_branch("alice", cid, user.id)  # the old branch is still there, with its answer
    assert [m.content for m in repo.get("alice", cid).messages] == ["What is 17 + 25?", "42"]
    assert len(repo.tree("alice", cid).messages) == 4


def test_search_finds_every_branch(repo):
    cid, first = _chat(repo)
    user = repo.get("alice", cid).messages[0]
    repo.add_message("alice", cid, "assistant", "an aardvark answer", parent=user.id)
    repo.show_branch("alice", cid, first)  # the aardvark is on the branch not shown
    assert [h.conversation_id for h in repo.search("alice", "aardvark")] == [cid]


def test_exports_carry_the_tree_and_the_branch_shown(repo):
    cid, first = _chat(repo)
    user = repo.get("alice", cid).messages[0]
    second = repo.add_message("alice", cid, "assistant", "forty-two", parent=user.id)
    data = repo.export_json("alice", cid)
    json.dumps(data)
    assert data["format"] == "gpt-oss-chat/2" and data["shown"] == [user.id, second]
    assert [(m["id"], m["parent_id"]) for m in data["messages"]] == [(user.id, None), (first, user.id),
                                                                      (second, user.id)]
    md = repo.export_markdown("alice", cid)
    assert "forty-two" in md and "\n42\n" not in md and "## Assistant (2 of 2)" in md


def test_migration_to_branches_makes_single_paths_and_back(url):
    """0007 -> 0008: each stored message follows the one before it, each conversation shows its last;
    down again keeps the branch shown (the schema before holds one line per conversation)."""
    engine = open_engine(url)
    upgrade(engine, "0007")
    cid = "f" * 32
    with engine.begin() as conn:
        old_conversation(conn, cid)
        for i, (role, content) in enumerate([("user", "hi"), ("assistant", "hello"), ("user", "2+2?"),
                                             ("assistant", "4")]):
            conn.execute(text("INSERT INTO messages (conversation_id, position, role, content, reasoning, "
                              "reasoning_summary, trace, tools_text, harmony, status, created) VALUES "
                              f"('{cid}', {i}, '{role}', '{content}', '', '', '[]', '', '[]', 'complete', "
                              "'2026-01-01 00:00:00')"))
    repo = Repository.open(url)  # upgrades to head
    conv = repo.get("alice", cid)
    assert [m.content for m in conv.messages] == ["hi", "hello", "2+2?", "4"]
    assert [m.parent_id for m in conv.messages] == [None] + [m.id for m in conv.messages[:-1]]
    assert conv.leaf_id == conv.messages[-1].id and all(len(m.siblings) == 1 for m in conv.messages)
    other = repo.add_message("alice", cid, "assistant", "four", parent=conv.messages[2].id)
    assert repo.search("alice", "hello")  # the full-text index kept working through the migration
    downgrade(engine, "0007")
    assert "parent_id" not in {c["name"] for c in inspect(engine).get_columns("messages")}
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT content FROM messages ORDER BY position")).scalars().all()
    assert kept == ["hi", "hello", "2+2?", "four"]  # the branch shown; "4" was on the other
    upgrade(engine)
    assert [m.content for m in repo.get("alice", cid).messages] == ["hi", "hello", "2+2?", "four"]
    assert repo.get("alice", cid).messages[-1].id == other
    engine.dispose()

"""The page's conversation and sharing services: owner-scoped, plain data out."""

import json

import pytest

from backend.services.conversations import Conversations, Sharing
from core.errors import NotFoundError
from storage.shares import Shares


@pytest.fixture
def services(repo, tmp_path):
    return Conversations(repo), Sharing(Shares(repo))


def chat(repo, owner, words):
    cid = repo.create_conversation(owner, words)
    repo.add_message(owner, cid, "user", words)
    repo.add_message(owner, cid, "assistant", f"About {words}.", reasoning="thinking")
    return cid


def test_list_open_rename_delete_stay_with_the_owner(repo, services):
    conversations, _ = services
    cid = chat(repo, "alice", "penguins")
    assert [c.id for c in conversations.list("alice")] == [cid] and conversations.list("bob") == []
    conversations.rename("alice", cid, "Birds")
    assert conversations.open("alice", cid).title == "Birds"
    assert conversations.titles("alice") == [(cid, "Birds")] and conversations.titles("bob") == []
    for stranger_does in (lambda: conversations.open("bob", cid), lambda: conversations.delete("bob", cid)):
        with pytest.raises(NotFoundError):
            stranger_does()
    conversations.delete("alice", cid)
    assert conversations.list("alice") == []


def test_search_gives_one_entry_per_conversation(repo, services):
    conversations, _ = services
    cid = chat(repo, "alice", "penguins swim")
    repo.add_message("alice", cid, "user", "more penguins")
    found = conversations.search("alice", "penguins", include_reasoning=False)
    newest = repo.get("alice", cid).messages[-1].id
    assert [c for _, c in found] == [f"{cid}:{newest}"] and "penguins" in found[0][0]
    assert conversations.search("bob", "penguins", include_reasoning=False) == []


def test_export_is_built_for_the_owner_and_never_stored(repo, services, tmp_path):
    conversations, _ = services
    cid = chat(repo, "alice", "otters")
    name, body = conversations.export("alice", cid, "json")
    assert name.endswith(".json") and json.loads(body)["messages"][1]["content"] == "About otters."
    assert conversations.export("alice", cid, "markdown")[1].startswith("# otters")
    with pytest.raises(NotFoundError):
        conversations.export("bob", cid, "json")
    assert not (tmp_path / "exports").exists()


def test_sharing_create_open_copy_revoke(repo, services):
    _, sharing = services
    cid = chat(repo, "alice", "seals")
    link = sharing.create("alice", cid, "1 day", include_reasoning=False)
    assert sharing.open(link.token).messages[1].reasoning == ""  # left out unless chosen
    copied = sharing.copy("bob", link.token)
    assert repo.get("bob", copied).messages[1].content == "About seals."
    assert [s.token for s in sharing.list("alice")] == [link.token] and sharing.list("bob") == []
    sharing.revoke("alice", link.token)
    with pytest.raises(NotFoundError):
        sharing.open(link.token)


@pytest.mark.parametrize("bad", ["\ud800 lone surrogate", "with NUL \x00 inside", "bell \x07 and esc \x1b[31m"])
def test_rename_and_search_clean_what_they_are_given(repo, services, bad):
    conversations, _ = services
    cid = chat(repo, "alice", "walruses")
    conversations.rename("alice", cid, bad)
    title = conversations.open("alice", cid).title
    assert not any(ch in title for ch in "\x00\x07\x1b\ud800") and title.strip()
    assert conversations.search("alice", bad, include_reasoning=True) == []  # no error, just no match


def test_titles_from_first_messages_are_clean(repo):
    from storage.repository import title_from

    assert title_from("hello\x00\x07 world\x1b") == "hello world"
    assert "\ud800" not in title_from("odd \ud800 one")


def test_answers_as_data_in_the_order_asked_with_the_policy_applied(repo):
    from backend.services.policy import ReasoningPolicy

    cid = chat(repo, "alice", "penguins")
    question, thought = [m.id for m in repo.get("alice", cid).messages]  # the first answer has reasoning
    ids = repo.add_answers("alice", cid, question, [{"status": "complete", "effort": e} for e in ("low", "high")])
    raw, hidden = Conversations(repo), Conversations(repo, policy=ReasoningPolicy("hidden"))
    assert [a["id"] for a in raw.answers_data("alice", cid, ids[::-1])] == ids[::-1]
    assert raw.answers_data("alice", cid, [thought])[0]["reasoning"] == "thinking"
    assert hidden.answers_data("alice", cid, [thought])[0]["reasoning"] == ""
    with pytest.raises(NotFoundError):
        raw.answers_data("bob", cid, ids)

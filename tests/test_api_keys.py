"""API keys in storage and on the command line: shown once, kept hashed, revocable."""

import pytest
from sqlalchemy import select

from backend.identity.users import UserDirectory, add_user, save_users
from backend.identity.users import main as users_cli
from core.errors import InputError
from storage.api_keys import ApiKeys, digest
from storage.schema import ApiKey


def test_a_key_is_kept_only_as_its_hash_and_names_its_owner(repo):
    keys = ApiKeys(repo)
    key, info = keys.create("alice", "laptop")
    assert key.startswith("goc_") and len(key) > 40 and info.prefix == key[:12]
    with repo.session() as s:
        row = s.scalars(select(ApiKey)).one()
        assert row.digest == digest(key) and key not in (row.digest, row.prefix, row.label)
    assert keys.owner_of(key) == "alice" and keys.owner_of(key + "x") is None and keys.owner_of("sk-other") is None
    other, _ = keys.create("hf:bob")
    assert keys.owner_of(other) == "hf:bob" and other != key
    keys.revoke(info.id)
    assert keys.owner_of(key) is None and keys.list("alice")[0].revoked


def test_owner_names_are_checked(repo):
    with pytest.raises(InputError, match="user name"):
        ApiKeys(repo).create("alice; drop table")


def test_the_command_line(tmp_path, capsys):
    add_user(tmp_path / "users.json", "alice", "alice-password", iterations=1000)
    users_cli(["key", "create", "alice", "--label", "ci", "--data-dir", str(tmp_path)])
    key = capsys.readouterr().out.splitlines()[-1]
    users_cli(["key", "list", "--data-dir", str(tmp_path)])
    listed = capsys.readouterr().out
    assert "alice" in listed and key[:12] in listed and key not in listed and "last used never" in listed
    users_cli(["key", "revoke", "1", "--data-dir", str(tmp_path)])
    users_cli(["key", "list", "alice", "--data-dir", str(tmp_path)])
    assert "revoked" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        users_cli(["key", "revoke", "99", "--data-dir", str(tmp_path)])
    assert "no API key with that id" in capsys.readouterr().err


def test_keys_are_for_users_and_die_with_them(tmp_path, capsys):
    data = str(tmp_path / "new")
    with pytest.raises(SystemExit) as exited:  # a name that is not a user gets no key
        users_cli(["key", "create", "mallory", "--data-dir", data])
    assert exited.value.code == 2 and "'mallory' is not a user" in capsys.readouterr().err
    assert not (tmp_path / "new" / "chat.db").exists()
    add_user(tmp_path / "new" / "users.json", "alice", "alice-password", iterations=1000)
    users_cli(["key", "create", "alice", "--data-dir", data])
    users_cli(["key", "create", "hf:bob", "--data-dir", data])  # Hugging Face users are not in the file
    db = tmp_path / "new" / "chat.db"
    assert db.stat().st_mode & 0o077 == 0 and (tmp_path / "new").stat().st_mode & 0o077 == 0
    capsys.readouterr()
    users_cli(["remove", "alice", "--file", str(tmp_path / "new" / "users.json"), "--data-dir", data])
    assert "revoked 1 API key(s)" in capsys.readouterr().out
    users_cli(["key", "list", "--data-dir", data])
    listed = capsys.readouterr().out.splitlines()
    assert "alice" in listed[0] and "revoked" in listed[0] and "revoked" not in listed[1]


def test_removing_a_user_without_a_database_creates_none(tmp_path, capsys):
    add_user(tmp_path / "users.json", "alice", "alice-password", iterations=1000)
    users_cli(["remove", "alice", "--file", str(tmp_path / "users.json"), "--data-dir", str(tmp_path)])
    assert not (tmp_path / "chat.db").exists() and "removed alice" in capsys.readouterr().out


def test_the_directory_follows_the_users_file(tmp_path):
    path = tmp_path / "users.json"
    users = UserDirectory(path, hf_login=True)
    assert not users.has("alice") and users.has("hf:bob") and not UserDirectory(path).has("hf:bob")
    add_user(path, "alice", "alice-password", iterations=1000)
    assert users.has("alice")
    save_users(path, {})
    assert not users.has("alice")
    path.write_text("{not json")
    assert not users.has("alice")  # an unreadable file: no password user's key works


@pytest.mark.parametrize("argv, said", [
    (["list", "--file", "{folder}"], "is not a users file"),
    (["list", "--file", "{bad}"], "is not a users file"),
    (["add", "carol", "--file", "{folder}", "--password-stdin"], "is not a users file"),
    (["key", "list", "--database-url", "postgresql+psycopg://nobody:x@127.0.0.1:1/none"], "error: "),
])
def test_the_command_line_says_what_is_wrong_without_a_traceback(tmp_path, capsys, monkeypatch, argv, said):
    (tmp_path / "bad.json").write_text("[1, 2]")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("long enough password\n"))
    argv = [a.format(folder=tmp_path, bad=tmp_path / "bad.json") for a in argv]
    with pytest.raises(SystemExit) as exited:
        users_cli(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and said in err and "Traceback" not in err

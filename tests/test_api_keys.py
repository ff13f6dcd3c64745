"""API keys in storage and on the command line: shown once, kept hashed, revocable."""

import pytest
from sqlalchemy import select

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

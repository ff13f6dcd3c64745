"""Password users, and two users on one server who never see each other's chats."""

import asyncio

import pytest

from backend.identity.signin import password_sign_in
from backend.identity.users import add_user, hash_password, load_users, main, verify_password

gradio_client = pytest.importorskip("gradio_client")


def test_hash_and_verify():
    stored = hash_password("correct horse", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$") and "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong horse", stored)
    assert not verify_password("x", "garbage")
    assert hash_password("same", 1000) != hash_password("same", 1000)  # salted


def test_users_file_and_cli(tmp_path, monkeypatch):
    path = tmp_path / "users.json"
    assert password_sign_in(path) is None  # no users: no login, one local user
    add_user(path, "alice", "alice-password", iterations=1000)
    with pytest.raises(ValueError):
        add_user(path, "bad name!", "long enough pw")
    with pytest.raises(ValueError):
        add_user(path, "bob", "short")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("bob-password\n"))
    main(["add", "bob", "--file", str(path), "--password-stdin"])
    sign_in = password_sign_in(path)

    def check(name, password):
        return asyncio.run(sign_in(name, password))
    assert check("alice", "alice-password") and check("bob", "bob-password")
    assert not check("alice", "bob-password") and not check("carol", "x")
    assert sorted(load_users(path)) == ["alice", "bob"]


def test_user_b_cannot_reach_user_a_conversations(two_user_app):
    alice = gradio_client.Client(two_user_app, auth=("alice", "alice-password"), verbose=False)
    bob = gradio_client.Client(two_user_app, auth=("bob", "bob-password"), verbose=False)
    cid = alice.submit("alice's secret plan", "", "medium", "", 1.0, 400, api_name="/send").result()[2]
    assert alice.predict(cid, api_name="/open_conversation")["messages"][0]["content"] == "alice's secret plan"
    assert bob.predict(api_name="/list_conversations") == []
    assert "secret" not in str(bob.predict("secret plan", True, api_name="/search"))
    for endpoint, args in [("/open_conversation", (cid,)), ("/rename", (cid, "mine now")), ("/delete", (cid,)),
                           ("/stop", (cid,)), ("/export_json", (cid,)), ("/regenerate", (cid, "low", "", 1.0, 64))]:
        with pytest.raises(Exception, match="does not exist"):
            bob.predict(*args, api_name=endpoint)
    with pytest.raises(Exception, match="does not exist"):  # nor by sending into it
        bob.submit("hijack", cid, "medium", "", 1.0, 64, api_name="/send").result()
    assert alice.predict(cid, api_name="/open_conversation")["title"] == "alice's secret plan"
    with pytest.raises(Exception, match="does not exist"):  # nor share it
        bob.predict(cid, "never", True, api_name="/create_share")
    link = alice.predict(cid, "never", False, api_name="/create_share")[0]
    token = link.rsplit("/", 1)[1]
    assert bob.predict(api_name="/list_shares") == []
    with pytest.raises(Exception, match="does not exist"):
        bob.predict(token, api_name="/revoke_share")
    assert [s["token"] for s in alice.predict(api_name="/list_shares")] == [token]


def test_health_and_share_pages_need_no_login_but_the_app_does(two_user_app):
    import urllib.error
    import urllib.request

    alice = gradio_client.Client(two_user_app, auth=("alice", "alice-password"), verbose=False)
    cid = alice.submit("a shared plan", "", "medium", "", 1.0, 64, api_name="/send").result()[2]
    link = alice.predict(cid, "1 day", False, api_name="/create_share")[0]
    with urllib.request.urlopen(two_user_app + "healthz", timeout=30) as r:
        assert r.status == 200
    with urllib.request.urlopen(two_user_app + link, timeout=30) as r:
        assert "a shared plan" in r.read().decode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(two_user_app + "config", timeout=30)
    assert refused.value.code == 401


def test_wrong_password_is_refused(two_user_app):
    with pytest.raises(Exception):
        gradio_client.Client(two_user_app, auth=("alice", "bob-password"), verbose=False)


def test_users_cli_says_what_is_wrong_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("short\n"))
    with pytest.raises(SystemExit) as exited:
        main(["add", "carol", "--file", str(tmp_path / "users.json"), "--password-stdin"])
    assert exited.value.code == 2 and "at least 8 characters" in capsys.readouterr().err


def test_the_users_file_is_never_readable_by_others(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "alice", "alice-password", iterations=1000)
    assert path.stat().st_mode & 0o077 == 0 and not path.with_suffix(".tmp").exists()


def test_exports_go_to_their_owner_only_and_die_with_the_conversation(two_user_app):
    import httpx

    def session(name):
        c = httpx.Client(base_url=two_user_app)
        assert c.post("login", data={"username": name, "password": f"{name}-password"}).status_code == 200
        return c

    alice_api = gradio_client.Client(two_user_app, auth=("alice", "alice-password"), verbose=False)
    cid = alice_api.submit("my private diary", "", "medium", "", 1.0, 64, api_name="/send").result()[2]
    alice, bob = session("alice"), session("bob")
    mine = alice.get(f"export/{cid}/markdown")
    assert mine.status_code == 200 and "my private diary" in mine.text
    assert "attachment" in mine.headers["content-disposition"]
    assert bob.get(f"export/{cid}/markdown").status_code == 404  # as if it did not exist
    assert httpx.get(f"{two_user_app}export/{cid}/json").status_code == 401  # no session
    alice_api.predict(cid, api_name="/delete")
    assert alice.get(f"export/{cid}/json").status_code == 404  # gone with its conversation

"""'Sign in with Hugging Face' as on a Space with hf_oauth: true.

Gradio's real OAuth routes are attached (not the local mock) and the signed session cookie
they would set after a login is made here with the same key, so the whole path after the
HF redirect is the real one: SessionMiddleware -> request.session -> owner "hf:<user>".
"""

import base64
import hashlib
import json
import time

import pytest
from itsdangerous import TimestampSigner

from testkit.net import free_port

gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("authlib")
SECRET = "test-oauth-secret"


def session_cookie(username: str) -> str:
    key = hashlib.sha256((SECRET + "-v4").encode()).hexdigest()  # how gradio.oauth keys its sessions
    session = {"oauth_info": {"access_token": "t", "expires_at": int(time.time()) + 3600,
                              "userinfo": {"preferred_username": username, "name": username,
                                           "profile": "", "picture": ""}}}
    data = base64.b64encode(json.dumps(session).encode())
    return "session=" + TimestampSigner(key).sign(data).decode()


@pytest.fixture
def space_app(tmp_path, launched, monkeypatch):
    import gradio.oauth

    from core.config import parse_config

    for name, value in {"OAUTH_CLIENT_ID": "client", "OAUTH_CLIENT_SECRET": SECRET,
                        "OAUTH_SCOPES": "openid profile", "OPENID_PROVIDER_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setattr(gradio.oauth, name, value)
    monkeypatch.setattr(gradio.oauth, "get_space", lambda: "team/gpt-oss-chat")
    config = parse_config(["--data-dir", str(tmp_path), "--port", str(free_port()), "--max-new-tokens", "64"],
                          {"SPACE_ID": "team/gpt-oss-chat", "OAUTH_CLIENT_ID": "client"})
    assert config.hf_login  # on by itself on a Space with OAuth
    yield f"http://127.0.0.1:{config.port}/", launched(config)


def client(url, user=None):
    headers = {"Cookie": session_cookie(user)} if user else None
    return gradio_client.Client(url, headers=headers, verbose=False)


def test_page_offers_the_login_button(space_app):
    url, parts = space_app
    config = gradio_client.Client(url, verbose=False).config
    assert any((c.get("props") or {}).get("elem_id") == "hf-login" for c in config["components"])
    assert parts.demo.expects_oauth  # Gradio attached its OAuth routes and session middleware


def test_anonymous_visitors_own_nothing(space_app):
    url, _ = space_app
    anonymous = client(url)
    banner, box, _ = anonymous.predict(api_name="/status")
    assert "Sign in with Hugging Face" in banner and not box.get("interactive", True)
    assert "Sign in" not in client(url, "alice").predict(api_name="/status")[0]
    with pytest.raises(Exception, match="Sign in with Hugging Face"):
        anonymous.predict(api_name="/list_conversations")
    with pytest.raises(Exception, match="Sign in with Hugging Face"):
        anonymous.submit("hello", "", "low", "", 1.0, 64, api_name="/send").result()


def test_hf_users_are_kept_apart(space_app):
    url, parts = space_app
    alice, bob = client(url, "alice"), client(url, "bob")
    cid = alice.submit("alice on the Space", "", "low", "", 1.0, 64, api_name="/send").result()[2]
    assert parts.service.repo.get("hf:alice", cid).messages[0].content == "alice on the Space"
    assert [c["id"] for c in alice.predict(api_name="/list_conversations")] == [cid]
    assert bob.predict(api_name="/list_conversations") == []
    with pytest.raises(Exception, match="does not exist"):
        bob.predict(cid, api_name="/open_conversation")


def test_a_failed_hugging_face_sign_in_is_in_the_audit_log(space_app):
    """Gradio's real /login/callback, reached without a login in progress (as a forged or stale
    redirect would): no user in the session, so the audit log says a sign-in failed."""
    import time

    import httpx

    url, parts = space_app
    httpx.get(url + "login/callback?code=x&state=y", follow_redirects=False)
    entries = []
    for _ in range(50):  # written just after the answer has gone out
        entries = [(e.owner, e.outcome) for e in parts.oversight.audit.store.entries() if e.action == "sign_in"]
        if entries:
            break
        time.sleep(0.1)
    assert entries == [("(unknown)", "failed")]

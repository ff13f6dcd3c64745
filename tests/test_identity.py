"""Owners from password login, HF sign-in, or the single local user."""

import time
from types import SimpleNamespace

import pytest

from core.errors import SignInError
from ui.identity import LOCAL_OWNER, Identity, hf_username


class NoSession:
    @property
    def session(self):  # what starlette does without SessionMiddleware
        raise AssertionError("SessionMiddleware must be installed")


def request(username=None, session=None):
    raw = NoSession() if session is None else SimpleNamespace(session=session)
    return SimpleNamespace(username=username, request=raw)


def hf_session(name, expires_in=3600):
    return {"oauth_info": {"expires_at": time.time() + expires_in, "userinfo": {"preferred_username": name}}}


def test_nothing_configured_is_one_local_user():
    assert Identity().owner(request()) == LOCAL_OWNER
    assert Identity().owner(None) == LOCAL_OWNER


def test_password_user():
    assert Identity().owner(request("alice")) == "alice"
    assert Identity(hf_login=True).owner(request("alice")) == "alice"


def test_hf_user_is_prefixed_and_distinct_from_password_users():
    ident = Identity(hf_login=True)
    assert ident.owner(request(session=hf_session("alice"))) == "hf:alice"
    assert ident.owner(request(session=hf_session("alice"))) != Identity().owner(request("alice"))


@pytest.mark.parametrize("session", [None, {}, hf_session("alice", expires_in=-10),
                                     {"oauth_info": {"userinfo": {}}}])
def test_hf_login_on_and_not_signed_in_owns_nothing(session):
    ident = Identity(hf_login=True)
    with pytest.raises(SignInError):
        ident.owner(request(session=session))
    assert not ident.signed_in(request(session=session))


def test_hf_username_without_session_middleware():
    assert hf_username(request()) is None
    assert hf_username(None) is None

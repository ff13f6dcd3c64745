"""Who is asking: the owner of everything a request reads or writes.

- password login (Gradio auth): the user name;
- "Sign in with Hugging Face" (Spaces with hf_oauth): "hf:" + the HF user name, read from the
  session Gradio's OAuth routes fill in, so an HF user never collides with a password user;
- nothing configured: one local user.

With HF sign-in on, a visitor who has not signed in owns nothing: a public Space must not put
every anonymous visitor into one shared history.
"""

from __future__ import annotations

from backend.identity.signin import hf_user
from core.errors import SignInError

LOCAL_OWNER = "local"
HF_PREFIX = "hf:"
SIGN_IN = "Sign in with Hugging Face (the button at the top) to chat; your conversations are kept under your account."


def session_cookies(app) -> list[str]:
    """The names of Gradio's password sign-in cookies (it sets a secure and a plain one)."""
    cookie_id = getattr(app, "cookie_id", "")
    return [f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"]


def session_token(request) -> str | None:
    """The sign-in session token a plain HTTP request carries, if any."""
    return next((request.cookies[n] for n in session_cookies(request.app) if n in request.cookies), None)


def hf_username(request) -> str | None:
    """The signed-in HF user name from the session cookie, if any (a gr.Request or a plain one)."""
    raw = getattr(request, "request", request)
    try:
        session = raw.session  # only there when Gradio's OAuth (SessionMiddleware) is on
    except (AssertionError, AttributeError):
        return None
    return hf_user(session)


class Identity:
    def __init__(self, hf_login: bool = False):
        self.hf_login = hf_login

    def owner(self, request) -> str:
        if request is not None and getattr(request, "username", None):
            return request.username  # password login
        if self.hf_login:
            name = hf_username(request)
            if not name:
                raise SignInError(SIGN_IN)
            return HF_PREFIX + name
        return LOCAL_OWNER

    def owner_or_none(self, request) -> str | None:
        """The owner, or None for a visitor who has to sign in first (and so owns nothing)."""
        try:
            return self.owner(request)
        except SignInError:
            return None

    def signed_in(self, request) -> bool:
        return self.owner_or_none(request) is not None

    def http_owner(self, request, tokens: dict | None) -> str | None:
        """The owner of a plain HTTP request (routes outside Gradio's events): with password users
        (`tokens`: Gradio's sign-in sessions) the user of the session cookie; otherwise as `owner`."""
        if tokens is not None:
            return tokens.get(session_token(request))
        if self.hf_login:
            name = hf_username(request)
            return HF_PREFIX + name if name else None
        return LOCAL_OWNER

"""Password sign-in that cannot stall the server or be guessed quickly.

- The PBKDF2 check runs on a worker thread, never on the event loop: wrong passwords cannot
  freeze streams or health checks for everyone else.
- Failures are counted per user name and per client address. After `FREE_FAILURES` for a name, each
  further attempt at that name must wait a growing delay (doubling, capped at 5 minutes); while
  waiting it is refused at once, without hashing, and says when to retry. A success clears the
  name's count. (The trade-off: whoever targets one name can hold its sign-in back; without it a
  name could be guessed at the server's full speed.)
- An address is never refused for failures under other names: behind a Space's proxy, a company's
  NAT or a reverse proxy many people share one. Once an address has failed `FREE_FAILURES` times,
  its attempts are checked one at a time and each wrong one is answered only after the address's
  delay (doubling, capped at `MAX_ADDRESS_DELAY_S`): guessing from it slows to one try per delay
  (however many it sends at once), while a right password is let in as soon as its turn comes.
  Which address a request has comes from uvicorn: the socket's peer, or X-Forwarded-For where the
  peer is a trusted proxy (--forwarded-allow-ips).
- Unknown names are checked against a dummy hash, so a wrong name takes as long as a wrong password
  and names do not leak by timing.
- Failures are logged with the name and address, never the password.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from fastapi import HTTPException

from backend.identity.users import hash_password, load_users, verify_password

log = logging.getLogger(__name__)

FREE_FAILURES = 3  # wrong passwords allowed before any delay
BASE_DELAY_S = 1.0  # the first delay; it doubles with each further failure
MAX_DELAY_S = 300.0
MAX_ADDRESS_DELAY_S = 10.0  # an address's wrong tries are answered this late at most
MAX_WAITING_PER_ADDRESS = 32  # attempts queued behind a throttled address's gate; more are refused
SWEEP_INTERVAL_S = 1.0  # how soon a removed user's or changed password's sessions end
CLIENT_ADDRESS: contextvars.ContextVar[str] = contextvars.ContextVar("client_address", default="?")


class TooManyAttempts(Exception):
    def __init__(self, retry_after_s: float):
        super().__init__(f"Too many failed sign-ins. Try again in {retry_after_s:.0f} s.")
        self.retry_after_s = retry_after_s


@dataclass
class _Failures:
    count: int = 0
    until: float = 0.0  # no attempt before this time (monotonic)


@dataclass
class Throttle:
    free: int = FREE_FAILURES
    base_delay_s: float = BASE_DELAY_S
    max_delay_s: float = MAX_DELAY_S
    _by_key: dict[str, _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, *keys: str) -> None:
        """Raise TooManyAttempts while any key must still wait."""
        now = time.monotonic()
        with self._lock:
            wait = max((self._by_key[k].until - now for k in keys if k in self._by_key), default=0.0)
        if wait > 0:
            raise TooManyAttempts(wait)

    def failed(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                f = self._by_key.setdefault(key, _Failures())
                f.count += 1
                if f.count > self.free:
                    delay = min(self.base_delay_s * 2 ** (f.count - self.free - 1), self.max_delay_s)
                    f.until = time.monotonic() + delay

    def wait_s(self, key: str) -> float:
        """How long `key` must still wait (0 when it need not)."""
        with self._lock:
            failures = self._by_key.get(key)
            return max(failures.until - time.monotonic(), 0.0) if failures else 0.0

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._by_key.pop(key, None)


class PasswordSignIn:
    """Checks passwords from a users file; its `check` is Gradio's `auth=` (a coroutine function:
    Gradio awaits only what `inspect.iscoroutinefunction` says is one, and would take the coroutine
    object of any other callable for a yes)."""

    def __init__(self, path: Path, throttle: Throttle | None = None, on_result=None,
                 addresses: Throttle | None = None):
        self.path, self.throttle = path, throttle or Throttle()  # per name: refuses while a delay runs
        self.addresses = addresses or Throttle(max_delay_s=MAX_ADDRESS_DELAY_S)  # per address: slows, never refuses
        self.on_result = on_result or (lambda name, outcome, address: None)  # the audit log, the metrics
        self._dummy: str | None = None
        self._gates: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # throttled address -> (lock, [waiting])

    def _dummy_hash(self, stored_example: str | None) -> str:
        """A hash with the users' own cost, for names that do not exist."""
        if self._dummy is None:
            iterations = int(stored_example.split("$")[1]) if stored_example else 600_000
            self._dummy = hash_password("no such user", iterations)
        return self._dummy

    def _verify(self, name: str, password: str) -> bool:
        users = load_users(self.path)  # re-read: users added while running can sign in
        stored = users.get(name)
        if stored is None:
            verify_password(password, self._dummy_hash(next(iter(users.values()), None)))
            return False
        return verify_password(password, stored)

    async def check(self, name: str, password: str) -> bool:
        address = CLIENT_ADDRESS.get()
        name_key, address_key = f"user:{name}", f"address:{address}"
        try:
            self.throttle.check(name_key)  # refused at once, no hashing, while the name's delay runs
        except TooManyAttempts as exc:
            self._refuse(name, address, exc)
        if self.addresses.wait_s(address_key) > 0 or address in self._gates:
            ok = await self._one_at_a_time(address, name, password)
        else:
            ok = await self._try(address, name, password)
        await asyncio.to_thread(self.on_result, name[:64], "ok" if ok else "failed", address)
        return ok

    async def _try(self, address: str, name: str, password: str) -> bool:
        ok = await asyncio.to_thread(self._verify, name, password)
        if ok:
            self.throttle.succeeded(f"user:{name}")
        else:
            self.throttle.failed(f"user:{name}")
            self.addresses.failed(f"address:{address}")
            log.warning("sign-in failed for user %r from %s", name[:64], address)
        return ok

    async def _one_at_a_time(self, address: str, name: str, password: str) -> bool:
        """A throttled address: its attempts pass one by one; a wrong one holds the gate until the
        address's delay is over, so the address gets one guess per delay however many it sends."""
        lock, waiting = self._gates.setdefault(address, (asyncio.Lock(), [0]))
        if waiting[0] >= MAX_WAITING_PER_ADDRESS:
            self._refuse(name, address, TooManyAttempts(MAX_ADDRESS_DELAY_S))
        waiting[0] += 1
        try:
            async with lock:
                ok = await self._try(address, name, password)
                if not ok:
                    await asyncio.sleep(self.addresses.wait_s(f"address:{address}"))
                return ok
        finally:
            waiting[0] -= 1
            if not waiting[0]:
                self._gates.pop(address, None)

    def _refuse(self, name: str, address: str, exc: TooManyAttempts):
        log.warning("sign-in throttled for user %r from %s", name[:64], address)
        self.on_result(name[:64], "throttled", address)
        raise HTTPException(status_code=429, detail=str(exc),
                            headers={"Retry-After": str(int(exc.retry_after_s) + 1)}) from exc


class ClientAddressMiddleware:
    """Makes the client address of each HTTP request known to the sign-in check (ASGI)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http":
            client = scope.get("client") or ("?", 0)
            token = CLIENT_ADDRESS.set(str(client[0]))
            try:
                await self.app(scope, receive, send)
            finally:
                CLIENT_ADDRESS.reset(token)
            return
        await self.app(scope, receive, send)


def hf_user(session) -> str | None:
    """The Hugging Face user name in a session that Gradio's OAuth routes filled in, unless expired."""
    info = session.get("oauth_info") if hasattr(session, "get") else None
    if not info or (info.get("expires_at") or float("inf")) < time.time():
        return None
    return (info.get("userinfo") or {}).get("preferred_username") or None


class HFSignInAudit:
    """Hears "Sign in with Hugging Face" finish (ASGI): after Gradio's /login/callback has run, the
    session (Starlette's SessionMiddleware, outside this one) holds the user's oauth_info, or does not
    if the sign-in failed. `on_result(prefix + name, "ok" | "failed", address)` as for password users."""

    def __init__(self, app, on_result: Callable[[str, str, str], None], prefix: str = "hf:"):
        self.app, self.on_result, self.prefix = app, on_result, prefix

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http" or not scope.get("path", "").endswith("/login/callback"):
            return await self.app(scope, receive, send)
        try:
            await self.app(scope, receive, send)
        finally:  # a callback that fails with an error is a failed sign-in too
            await self._heard(scope)

    async def _heard(self, scope) -> None:
        name = (hf_user(scope.get("session") or {}) or "")[:64]
        address = str((scope.get("client") or ("?", 0))[0])
        await asyncio.to_thread(self.on_result, self.prefix + name if name else "(unknown)", "ok" if name else "failed",
                                address)


class SessionGuard:
    """Ends Gradio login sessions that must not live on: the user was removed, the password changed
    (the stored hash is not the one the session began with), or the session is older than its
    lifetime. Gradio keeps sessions as a token -> user name dict; `sweep` prunes it in place, so the
    next request of an ended session meets the login page (or a 401 through the API)."""

    def __init__(self, path: Path, lifetime_s: float):
        self.path, self.lifetime_s = path, lifetime_s
        self._began: dict[str, tuple[str | None, float]] = {}  # token -> (stored hash, first seen)

    def sweep(self, tokens: dict[str, str], now: float | None = None) -> list[str]:
        """Remove ended sessions from `tokens`; returns the names whose sessions ended."""
        users, now = load_users(self.path), time.monotonic() if now is None else now
        ended = []
        for token, name in list(tokens.items()):
            stored, began = self._began.setdefault(token, (users.get(name), now))
            if users.get(name) is None or users.get(name) != stored or now - began > self.lifetime_s:
                tokens.pop(token, None)
                self._began.pop(token, None)
                ended.append(name)
        for token in set(self._began) - set(tokens):  # signed out meanwhile
            self._began.pop(token, None)
        if ended:
            log.info("ended %d sign-in session(s): user removed, password changed or lifetime over", len(ended))
        return ended

    def watch(self, get_tokens, interval_s: float = SWEEP_INTERVAL_S) -> None:
        """Sweep on a daemon thread every `interval_s` seconds (sessions end within that time).
        `get_tokens` gives the server's sessions, or None before it starts and after it closed."""
        def loop():
            served = False
            while True:
                tokens = get_tokens()
                if tokens is None and served:
                    return  # the server closed
                if tokens is not None:
                    served = True
                    try:
                        self.sweep(tokens)
                    except Exception:  # a bad users file must not stop the guard
                        log.exception("checking sign-in sessions failed")
                time.sleep(interval_s)

        threading.Thread(target=loop, name="session-guard", daemon=True).start()


def password_sign_in(path: Path, on_result=None):
    """Gradio's `auth=` for a users file, or None when no users are configured (one local user).
    `on_result(name, outcome, address)` hears every try: ok, failed or throttled."""
    return PasswordSignIn(path, on_result=on_result).check if load_users(path) else None

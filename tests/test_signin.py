"""Signing in: off the event loop, throttled per name and address, no timing leak of names."""

import asyncio
import time

import httpx
import pytest

from backend.identity import signin
from backend.identity.signin import PasswordSignIn, Throttle, TooManyAttempts
from backend.identity.users import ITERATIONS, add_user
from backend.identity.users import main as users_cli


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    path = tmp_path_factory.mktemp("users") / "users.json"
    add_user(path, "alice", "alice-password")  # the real cost (600,000 PBKDF2 iterations)
    return path


def test_eight_wrong_passwords_never_block_the_event_loop(users):
    """The probe: 8 parallel wrong logins. Each PBKDF2 check costs ~0.35 s; on the event loop they
    would stop every other coroutine (streams, health checks) for the whole run."""
    sign_in = PasswordSignIn(users, Throttle(free=100))

    async def run():
        gaps, stop = [], asyncio.Event()

        async def ticker():
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        t0 = time.perf_counter()
        results = await asyncio.gather(*[sign_in.check("alice", f"wrong-{i}") for i in range(8)])
        duration = time.perf_counter() - t0
        stop.set()
        await tick
        return results, max(gaps), duration

    results, largest_gap, duration = asyncio.run(run())
    assert results == [False] * 8
    assert largest_gap < 0.5 * duration, (largest_gap, duration)  # the loop kept running throughout


def test_failures_are_throttled_with_growing_delays_without_hashing(users, monkeypatch):
    throttle = Throttle(free=3, base_delay_s=60)
    sign_in = PasswordSignIn(users, throttle)
    for i in range(4):
        assert not asyncio.run(sign_in.check("alice", f"guess-{i}"))
    hashed = []
    monkeypatch.setattr(signin, "verify_password", lambda *a: hashed.append(a) or True)
    with pytest.raises(Exception) as refused:  # even the right password waits, refused at once
        asyncio.run(sign_in.check("alice", "alice-password"))
    assert refused.value.status_code == 429 and "Try again in" in refused.value.detail and not hashed
    assert asyncio.run(sign_in.check("bob", "x")) is False  # checked (bob is no user), not refused: the address is free


def test_a_shared_address_slows_guessers_but_lets_a_right_password_in(users):
    """Behind one proxy or NAT: failures under many names never make alice's right password 429;
    the address's wrong tries are answered one at a time, each after the address's delay."""
    addresses = Throttle(free=3, base_delay_s=0.3, max_delay_s=0.3)
    sign_in = PasswordSignIn(users, Throttle(free=3), addresses=addresses)

    async def run():
        for i in range(6):  # a guesser sprays names from the shared address
            assert not await sign_in.check(f"user{i}", "guess")
        t0 = time.perf_counter()
        wrong = await asyncio.gather(*[sign_in.check(f"other{i}", "guess") for i in range(4)])
        spread = time.perf_counter() - t0
        return wrong, spread, await sign_in.check("alice", "alice-password")

    wrong, spread, right = asyncio.run(run())
    assert wrong == [False] * 4 and spread >= 4 * 0.3  # four parallel guesses took four delays
    assert right  # and alice, at the same address, is let in


def test_delays_double_and_a_success_clears_the_name():
    throttle = Throttle(free=1, base_delay_s=0.05, max_delay_s=0.2)
    throttle.failed("user:bob")
    throttle.check("user:bob")  # the free failure
    throttle.failed("user:bob")
    with pytest.raises(TooManyAttempts):
        throttle.check("user:bob")
    time.sleep(0.06)
    throttle.check("user:bob")
    throttle.failed("user:bob")
    assert throttle._by_key["user:bob"].until - time.monotonic() > 0.06  # doubled
    throttle.succeeded("user:bob")
    throttle.check("user:bob")


def test_unknown_names_cost_the_same_hash_as_known_ones(users, monkeypatch):
    costs = []
    real = signin.verify_password

    def spy(password, stored):
        costs.append(int(stored.split("$")[1]))
        return real(password, stored)

    monkeypatch.setattr(signin, "verify_password", spy)
    sign_in = PasswordSignIn(users, Throttle(free=100))
    assert not asyncio.run(sign_in.check("alice", "nope")) and not asyncio.run(sign_in.check("nobody", "nope"))
    assert costs == [ITERATIONS, ITERATIONS]


def test_gradio_awaits_the_check(users):
    import inspect

    assert inspect.iscoroutinefunction(signin.password_sign_in(users))  # else any password would pass


def test_the_real_login_route_answers_429_after_repeated_failures(two_user_app):
    url = two_user_app
    codes = [httpx.post(url + "login", data={"username": "alice", "password": f"bad-{i}"}).status_code
             for i in range(5)]
    assert codes[:3] == [400, 400, 400] and codes[-1] == 429
    right = httpx.post(url + "login", data={"username": "alice", "password": "alice-password"})
    assert right.status_code == 429 and "Try again in" in right.json()["detail"]
    # Another user behind the same (trusted, local) proxy is not held back by alice's guesser
    bob = httpx.post(url + "login", data={"username": "bob", "password": "bob-password"})
    assert bob.status_code == 200


def test_the_address_behind_a_trusted_proxy_is_the_forwarded_one(two_user_app, caplog):
    """The test client connects from 127.0.0.1, which uvicorn trusts by default (--forwarded-allow-ips):
    its X-Forwarded-For is the address throttling and the audit log see."""
    import logging

    with caplog.at_level(logging.WARNING, logger="backend.identity.signin"):
        httpx.post(two_user_app + "login", data={"username": "alice", "password": "bad"},
                   headers={"X-Forwarded-For": "203.0.113.7"})
    assert "from 203.0.113.7" in caplog.text


def test_sessions_end_when_the_user_goes_the_password_changes_or_time_runs_out(tmp_path):
    from backend.identity.signin import SessionGuard

    path = tmp_path / "users.json"
    for name in ("alice", "bob", "carol"):
        add_user(path, name, f"{name}-password", iterations=1000)
    guard = SessionGuard(path, lifetime_s=100)
    tokens = {"ta": "alice", "tb": "bob", "tc": "carol"}
    assert guard.sweep(tokens, now=0) == [] and len(tokens) == 3
    users_cli(["remove", "bob", "--file", str(path)])
    add_user(path, "carol", "a-new-password", iterations=1000)  # carol changed her password
    assert sorted(guard.sweep(tokens, now=1)) == ["bob", "carol"] and tokens == {"ta": "alice"}
    assert guard.sweep(tokens, now=99) == [] and guard.sweep(tokens, now=101) == ["alice"]  # lifetime over


def test_a_removed_users_session_ends_at_once_and_signout_ends_only_its_own(two_user_app, tmp_path):
    url = two_user_app

    def session(name):
        c = httpx.Client(base_url=url)
        assert c.post("login", data={"username": name, "password": f"{name}-password"}).status_code == 200
        assert c.get("config").status_code == 200
        return c

    alice_here, alice_there, bob = session("alice"), session("alice"), session("bob")
    assert alice_here.post("signout").status_code == 200
    assert alice_here.get("config").status_code == 401 and alice_there.get("config").status_code == 200
    users = next(p for p in tmp_path.rglob("users.json"))
    users_cli(["remove", "bob", "--file", str(users)])
    deadline = time.time() + 10
    while bob.get("config").status_code == 200 and time.time() < deadline:
        time.sleep(0.2)
    assert bob.get("config").status_code == 401 and alice_there.get("config").status_code == 200


def _callback_app(on_result, sets_session: bool):
    """Starlette's real SessionMiddleware around the audit, and a /login/callback standing in for
    Gradio's (which needs the Hugging Face OpenID provider): it fills the session as Gradio's does."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    def callback(request):
        if sets_session:
            request.session["oauth_info"] = {"userinfo": {"preferred_username": "ada"}}
        return PlainTextResponse("redirecting")

    return Starlette(routes=[Route("/login/callback", callback), Route("/other", callback)],
                     middleware=[Middleware(SessionMiddleware, secret_key="k"),
                                 Middleware(signin.HFSignInAudit, on_result=on_result, prefix="hf:")])


@pytest.mark.parametrize("signed_in", [True, False])
def test_hugging_face_sign_ins_reach_the_audit_callback(signed_in):
    from starlette.testclient import TestClient

    heard = []
    with TestClient(_callback_app(lambda *a: heard.append(a), signed_in)) as http:
        http.get("/other")  # not the callback: nothing heard
        http.get("/login/callback")
    assert heard == [("hf:ada", "ok", "testclient")] if signed_in else [("(unknown)", "failed", "testclient")]

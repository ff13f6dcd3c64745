"""The page's `settle` calls (ui/functions.py `settle_after_relays`) held at the network until released:
the browser tests' way to make "answered after the user moved on" certain instead of a timing chance."""

from __future__ import annotations

import json
import time


class HeldSettles:
    """Holds every settle a page asks from now on; `release()` lets them through and waits for their
    answers to be painted."""

    def __init__(self, pg, parts, timeout_s: float = 60):
        self.pg, self.held, self.answered, self.holding = pg, [], [], True
        self.settles = {i for i, fn in parts.demo.fns.items() if fn.name == "settle"}
        self.deadline = time.monotonic() + timeout_s
        pg.route("**/run/predict*", self._route)
        pg.on("requestfinished", lambda r: self.answered.append(r) if self._is_settle(r) else None)

    def _is_settle(self, request) -> bool:
        return "/run/predict" in request.url and json.loads(request.post_data or "{}").get("fn_index") in self.settles

    def _route(self, route) -> None:
        self.held.append(route) if self.holding and self._is_settle(route.request) else route.continue_()

    def wait_asked(self, n: int) -> None:
        """Until the page has asked `n` settles (each relay that ends asks one)."""
        while len(self.held) < n:
            assert time.monotonic() < self.deadline, f"settles asked: {len(self.held)} of {n}"
            self.pg.wait_for_timeout(50)

    def release(self) -> None:
        """Let the held settles through, wait for their answers, and for the page to paint them."""
        self.holding = False
        for route in self.held:
            route.continue_()
        while len(self.answered) < len(self.held):
            assert time.monotonic() < self.deadline, f"settles answered: {len(self.answered)} of {len(self.held)}"
            self.pg.wait_for_timeout(50)
        self.pg.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")

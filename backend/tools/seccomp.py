"""A seccomp filter for the python sandbox, compiled here to classic BPF (no libseccomp needed).

bubblewrap already unshares every namespace and drops privileges; the filter takes away the kernel
surfaces that model-written code has no use for and that container escapes go through: new
namespaces (nested user namespaces), io_uring, the kernel keyring, ptrace, bpf, perf events,
userfaultfd, mounting, module and kexec loading. A denied call fails with EPERM, as in Docker's
default profile; clone3 fails with ENOSYS (its flags sit in memory a filter cannot read), so the C
library falls back to clone, whose flags the filter checks. Any other architecture's calls
(x32 on x86_64 included) are refused, so the numbers below cannot be dodged.

bubblewrap takes the program as raw `struct sock_filter` records on a file descriptor (`--seccomp FD`).
"""

from __future__ import annotations

import errno
import os
import platform
import struct
from dataclasses import dataclass

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
NR_OFFSET, ARCH_OFFSET, ARG0_OFFSET = 0, 4, 16
LD_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, ..., BPF_RET|K
ALLOW, ERRNO, KILL = 0x7FFF0000, 0x00050000, 0x80000000
X32_BIT = 0x40000000
NEW_NAMESPACES = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 \
    | 0x40000000  # CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET


@dataclass(frozen=True)
class Arch:
    audit: int  # AUDIT_ARCH_*
    clone: int
    clone3: int
    denied: dict[str, int]
    x32: bool = False  # syscall numbers with X32_BIT set are another ABI: refuse them


_COMMON_NAMES = ("unshare", "setns", "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key",
                 "request_key", "ptrace", "bpf", "perf_event_open", "userfaultfd", "mount", "umount2", "pivot_root",
                 "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
                 "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon",
                 "swapoff", "acct", "open_by_handle_at", "name_to_handle_at", "quotactl", "process_vm_writev")

ARCHES = {
    "x86_64": Arch(0xC000003E, clone=56, clone3=435, x32=True, denied=dict(zip(_COMMON_NAMES, (
        272, 308, 425, 426, 427, 250, 248, 249, 101, 321, 298, 323, 165, 166, 155, 428, 429, 430, 431, 432, 433,
        442, 246, 320, 175, 313, 176, 169, 167, 168, 163, 304, 303, 179, 311)))),
    "aarch64": Arch(0xC00000B7, clone=220, clone3=435, denied=dict(zip(_COMMON_NAMES, (
        97, 268, 425, 426, 427, 219, 217, 218, 117, 280, 241, 282, 40, 39, 41, 428, 429, 430, 431, 432, 433,
        442, 104, 294, 105, 273, 106, 142, 224, 225, 89, 265, 264, 60, 271)))),
}


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def compile_filter(arch: Arch) -> bytes:
    """The program, as bubblewrap reads it. Layout (jumps are forward, counted in instructions):
    arch check, then one JEQ per denied call, then clone's flags, then the returns."""
    denied = sorted(set(arch.denied.values()))
    body: list[tuple] = [("ld", ARCH_OFFSET), ("jeq_else", arch.audit, "kill"), ("ld", NR_OFFSET)]
    if arch.x32:
        body.append(("jge", X32_BIT, "eperm"))
    body += [("jeq", nr, "eperm") for nr in denied]
    body += [("jeq", arch.clone3, "enosys"), ("jeq_else", arch.clone, "allow"), ("ld", ARG0_OFFSET),
             ("jset", NEW_NAMESPACES, "eperm")]
    returns = {"allow": ALLOW, "eperm": ERRNO | errno.EPERM, "enosys": ERRNO | errno.ENOSYS, "kill": KILL}
    at = {label: len(body) + i for i, label in enumerate(returns)}
    out = []
    for i, (op, k, *target) in enumerate(body):
        jump = at[target[0]] - i - 1 if target else 0
        if op == "ld":
            out.append(_insn(LD_ABS, k))
        elif op == "jeq_else":  # equal: go on; otherwise jump
            out.append(_insn(JEQ, k, 0, jump))
        else:  # jeq / jge / jset: true jumps
            out.append(_insn({"jeq": JEQ, "jge": JGE, "jset": JSET}[op], k, jump, 0))
    # clone without new namespaces falls through to allow
    out += [_insn(RET, code) for code in returns.values()]
    return b"".join(out)


def sandbox_filter() -> bytes | None:
    """The compiled filter for this machine, or None where its syscall numbers are not known here."""
    arch = ARCHES.get(platform.machine())
    return compile_filter(arch) if arch else None


def filter_fd(program: bytes) -> int:
    """A readable descriptor holding `program` (a pipe: a few hundred bytes fit its buffer)."""
    read, write = os.pipe()
    try:
        os.write(write, program)
    finally:
        os.close(write)
    return read

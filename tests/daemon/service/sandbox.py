"""Run a command under the seccomp part of systemd/d2stream.service, without systemd.

``python -m tests.daemon.service.sandbox UNIT -- COMMAND...`` reads the unit's
``SystemCallFilter=``, ``SystemCallErrorNumber=``, ``MemoryDenyWriteExecute=`` and
``RestrictAddressFamilies=``, expands the syscall groups with ``systemd-analyze syscall-filter``
(systemd's own tables), loads the same seccomp filters systemd would (libseccomp, through
ctypes), sets ``no_new_privs`` and execs COMMAND. Everything COMMAND starts (the model worker)
inherits the filters. This proves, on any Linux machine, that the daemon works with the
syscalls, memory protections and socket families the unit leaves it.

Filters (as systemd builds them): an allow list (anything else fails with
``SystemCallErrorNumber``); a W^X filter (``mmap`` with write and execute, ``mprotect``/
``pkey_mprotect`` adding execute, ``shmat`` with ``SHM_EXEC`` fail with EPERM); a socket-family
filter (``socket()`` of another family fails with EAFNOSUPPORT).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7
PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000
PR_SET_NO_NEW_PRIVS = 38
AF_MAX = 46


def scmp_act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def unit_settings(unit: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for raw in unit.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def syscall_groups(analyze: str) -> dict[str, list[str]]:
    """``@group -> members`` (members may be groups) from ``systemd-analyze syscall-filter``."""
    text = subprocess.run([analyze, "syscall-filter"], capture_output=True, text=True,
                          check=True).stdout
    groups: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@"):
            current = line.strip()
            groups[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].append(line.strip())
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        out |= expand(groups[name], groups) if name.startswith("@") else {name}
    return out


def allowed_syscalls(settings: dict[str, list[str]], groups: dict[str, list[str]]) -> set[str]:
    """The allow list of the unit's ``SystemCallFilter=`` lines (first an allow list, then
    ``~`` lines removing from it)."""
    allowed: set[str] = set()
    for value in settings.get("SystemCallFilter", []):
        deny = value.startswith("~")
        names = expand(value.lstrip("~").split(), groups)
        allowed = allowed - names if deny else allowed | names
    return allowed


def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def _rule(lib: ctypes.CDLL, ctx: int, action: int, name: str, *cmps: tuple[int, int, int, int]
          ) -> bool:
    number = lib.seccomp_syscall_resolve_name(name.encode())
    if number == -1:  # __NR_SCMP_ERROR: unknown name
        return False
    array = (_ArgCmp * max(1, len(cmps)))(*[_ArgCmp(*c) for c in cmps])
    rc = lib.seccomp_rule_add_array(ctx, action, number, len(cmps), array)
    if rc not in (0, -errno.EEXIST):
        if number < 0:  # a syscall of another architecture
            return False
        raise OSError(-rc, f"seccomp_rule_add({name}): {os.strerror(-rc)}")
    return True


def _load(lib: ctypes.CDLL, ctx: int) -> None:
    rc = lib.seccomp_load(ctx)
    lib.seccomp_release(ctx)
    if rc:
        raise OSError(-rc, f"seccomp_load: {os.strerror(-rc)}")


def apply(unit: Path) -> dict[str, int]:
    """Load the unit's filters into this process; returns how many rules of each kind."""
    settings = unit_settings(unit)
    analyze = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    lib = _lib()
    counts = {"allowed": 0, "wx": 0, "families": 0}
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if settings.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
        deny = scmp_act_errno(errno.EPERM)
        both = PROT_WRITE | PROT_EXEC
        counts["wx"] += _rule(lib, ctx, deny, "mmap", (2, SCMP_CMP_MASKED_EQ, both, both))
        counts["wx"] += _rule(lib, ctx, deny, "mmap2", (2, SCMP_CMP_MASKED_EQ, both, both))
        for name in ("mprotect", "pkey_mprotect"):
            counts["wx"] += _rule(lib, ctx, deny, name,
                                  (2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
        counts["wx"] += _rule(lib, ctx, deny, "shmat", (2, SCMP_CMP_MASKED_EQ, SHM_EXEC,
                                                        SHM_EXEC))
        _load(lib, ctx)
    families = settings.get("RestrictAddressFamilies")
    if families:
        keep = {int(getattr(socket, name)) for name in " ".join(families).split()}
        ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
        for family in range(AF_MAX):
            if family not in keep:
                counts["families"] += _rule(lib, ctx, scmp_act_errno(errno.EAFNOSUPPORT),
                                            "socket", (0, SCMP_CMP_EQ, family, 0))
        _load(lib, ctx)
    # Last: loading a filter needs seccomp(2), which the allow list does not contain.
    if "SystemCallFilter" in settings:
        code = getattr(errno, settings.get("SystemCallErrorNumber", ["EPERM"])[-1])
        ctx = lib.seccomp_init(scmp_act_errno(code))
        for name in sorted(allowed_syscalls(settings, syscall_groups(analyze))):
            counts["allowed"] += _rule(lib, ctx, SCMP_ACT_ALLOW, name)
        _load(lib, ctx)
    return counts


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: python -m tests.daemon.service.sandbox UNIT -- COMMAND...\n")
        return 2
    counts = apply(Path(argv[0]))
    sys.stderr.write(f"sandbox: {counts['allowed']} syscalls allowed, {counts['wx']} W^X rules, "
                     f"{counts['families']} socket families refused\n")
    sys.stderr.flush()
    os.execvp(argv[2], argv[2:])
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


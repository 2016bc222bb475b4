"""The install steps of docs/install.md, run as written into a temporary root.

:func:`doc_steps` takes the shell block between the ``install-steps`` markers; :func:`rewrite`
changes a step only so that it stays inside the root (docs/install.md, "How the steps are
tested", lists every change); :func:`service_command` is what ``systemctl start`` would run:
the unit's ``ExecStart=`` as its user, with ``$STATE_DIRECTORY``/``$CACHE_DIRECTORY``, in a
mount namespace where all but those folders and ``/tmp`` is read-only
(``ProtectSystem=strict``), under the unit's seccomp filters (``sandbox.py``).
"""

from __future__ import annotations

import grp
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.daemon.daemon_helpers import REPO_ROOT

DOC = REPO_ROOT / "docs" / "install.md"
SANDBOX = REPO_ROOT / "tests" / "daemon" / "service" / "sandbox.py"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROOTED = ("/opt/d2stream", "/etc/d2stream", "/var/lib/d2stream", "/var/cache/d2stream",
          "/etc/systemd/system")
_ROOTED_RE = re.compile(r"(?<![\w./-])(" + "|".join(map(re.escape, ROOTED)) + r")(?=[/\s\"']|$)")
_USER_RE = re.compile(r"(?<=\s)d2stream(?=\s|$)")
NOT_IN_DEBIAN = {"python3-picamera2"}  # Raspberry Pi OS's archive only


def doc_steps(doc: Path = DOC) -> list[str]:
    """The commands of the marked block, continuation lines joined, comment lines dropped."""
    text = doc.read_text(encoding="utf-8")
    block = text.split("<!-- install-steps:begin -->", 1)[1].split(
        "<!-- install-steps:end -->", 1)[0]
    lines = block.strip().splitlines()
    assert lines[0].startswith("```") and lines[-1] == "```", "the steps are one code block"
    steps, current = [], ""
    for line in lines[1:-1]:
        current += line.strip() if current else line
        if current.endswith("\\"):
            current = current[:-1].rstrip() + " "
            continue
        if current.strip() and not current.lstrip().startswith("#"):
            steps.append(current)
        current = ""
    return steps


@dataclass(frozen=True)
class Target:
    """Where the steps install: ``root`` (temporary) and the service ``user``."""

    root: Path
    user: str

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")


def _groups(match: re.Match[str]) -> str:
    names = [g for g in match.group(1).split(",") if _group_exists(g)]
    return f"--groups {','.join(names)}" if names else ""


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def apt_packages(step: str) -> list[str]:
    words = step.split("#", 1)[0].split()
    return [w for w in words[words.index("install") + 1:] if not w.startswith("-")]


def rewrite(step: str, target: Target) -> str | None:
    """The step as run in the test (``None``: replaced by the test's own checks)."""
    command = step.strip()
    command = re.sub(r"^sudo -u d2stream ", "SETPRIV ", command).removeprefix("sudo ")
    if command.startswith("apt install"):
        wanted = [p for p in apt_packages(command) if p not in NOT_IN_DEBIAN]
        return f"dpkg -s {' '.join(wanted)} >/dev/null"  # checked: .ci/system-deps.sh
    if command.startswith("systemctl "):
        return None  # no systemd here: service_command() does what the unit does
    command = _ROOTED_RE.sub(lambda m: str(target.root) + m.group(1), command)
    command = _USER_RE.sub(target.user, command)
    command = re.sub(r"--groups (\S+)", _groups, command)
    command = command.replace("SETPRIV ", f"setpriv --reuid={target.user} "
                              f"--regid={target.user} --init-groups ", 1)
    command = re.sub(r"(\|\s*)sudo ", r"\1", command)
    if command.startswith("systemd-analyze verify "):
        command = command.replace("verify ", f"verify --root={target.root} ", 1)
    return command


def unit_settings(unit: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in unit.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def service_command(target: Target, unit: Path, python: str = sys.executable) -> list[str]:
    """``systemctl start`` without systemd: the unit's ExecStart= as its User=, with its
    state and cache directories, file system read-only but for them (and /tmp), seccomp on."""
    settings = unit_settings(unit)
    state = target.path("/var/lib/" + settings["StateDirectory"])
    cache = target.path("/var/cache/" + settings["CacheDirectory"])
    workdir = target.path(settings["WorkingDirectory"])
    exec_start = _ROOTED_RE.sub(lambda m: str(target.root) + m.group(1), settings["ExecStart"])
    env = [f"STATE_DIRECTORY={state}", f"CACHE_DIRECTORY={cache}", f"HOME={state}",
           f"PATH={SYSTEM_PATH}"]
    env += _environment(unit)
    run = ["setpriv", f"--reuid={target.user}", f"--regid={target.user}", "--init-groups",
           "env", "-i", *env, python, str(SANDBOX), str(unit), "--", *shlex.split(exec_start)]
    q = shlex.quote
    script = " && ".join([
        "mount --bind /tmp /tmp",
        f"mount --bind {q(str(target.root))} {q(str(target.root))}",
        f"mount -o remount,bind,ro {q(str(target.root))}",
        *(f"mount --bind {q(str(d))} {q(str(d))} && mount -o remount,bind,rw {q(str(d))}"
          for d in (state, cache)),  # a bind mount starts with its source's read-only flag
        "mount -o remount,bind,ro /",  # per-mount flag in this namespace only
        f"cd {q(str(workdir))}",
        "exec " + " ".join(map(q, run)),
    ])
    return ["unshare", "--mount", "--propagation", "private", "bash", "-c", script]


def _environment(unit: Path) -> list[str]:
    """The unit's ``Environment=`` assignments (``NAME=value`` each)."""
    return [raw.partition("=")[2].strip() for raw in unit.read_text(encoding="utf-8")
            .splitlines() if raw.startswith("Environment=")]

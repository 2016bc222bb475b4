"""Run every README shell block marked runnable, as written, in a fresh copy of the repository.

A block is runnable when the line before its opening fence is ``<!-- runnable -->``::

    <!-- runnable -->
    ```sh
    d2stream --help
    ```

The blocks run in order, a ``sh`` block with ``bash -euo pipefail`` and a ``python`` block with
the environment's Python, in one working copy (files a block writes are there for the next), as a
new user would type them after ``make setup``: the copy holds the repository's tracked files,
``.venv`` is the running Python's environment and ``../shared/fixtures`` the fixtures. The only
change to the environment: ``D2STREAM_HTTP_PORT`` (config.yaml's live-view port, 8080 by default)
is a free port unless already set, so that the check passes on a machine where 8080 is in use.
Exit status 1 at the first block that fails, with its output.
Usage: python .ci/readme_commands.py [--readme README.md] [--list] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKER = "<!-- runnable -->"
FENCE = re.compile(r"^```(sh|bash|shell|python)\s*$")
BLOCK_TIMEOUT_S = 900


def runnable_blocks(text: str) -> list[tuple[int, str, str]]:
    """``(line number, language, body)`` of each marked block; a marker not followed by a sh or
    python fence is an error (a marker that marks nothing would silently test nothing)."""
    lines = text.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if fence is None:
            raise ValueError(f"line {i + 1}: {MARKER} is not followed by a ```sh or ```python "
                             "block")
        end = next((j for j in range(i + 2, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"line {i + 2}: the block is never closed")
        language = "python" if fence.group(1) == "python" else "sh"
        blocks.append((i + 3, language, "\n".join(lines[i + 2:end]) + "\n"))
    return blocks


def tracked_files(repo: Path) -> list[str]:
    """The repository's files as a fresh clone has them (git's list; all files without git)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True,
                             check=True, timeout=60).stdout.decode()
        return [name for name in out.split("\0") if name and (repo / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "models", "out", "var", "__pycache__"}
        return [str(p.relative_to(repo)) for p in repo.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(repo).parts)]


def fresh_copy(root: Path, fixtures: Path) -> Path:
    """``root/d2stream``: the tracked files, ``.venv`` -> this Python's environment, and
    ``root/shared/fixtures`` -> the fixtures."""
    copy = root / "d2stream"
    for name in tracked_files(REPO):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, copy / name)
    (copy / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (root / "shared").mkdir()
    (root / "shared" / "fixtures").symlink_to(fixtures.resolve(), target_is_directory=True)
    return copy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_blocks(blocks: list[tuple[int, str, str]], copy: Path) -> int:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONUNBUFFERED="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.prefix) / "bin"), env.get("PATH", "")])
    env.setdefault("D2STREAM_HTTP_PORT", str(free_port()))
    for number, language, body in blocks:
        print(f"--- README line {number}:\n{body}", end="", flush=True)
        command = [sys.executable, "-c", body] if language == "python" else \
            ["bash", "-euo", "pipefail", "-c", body]
        try:
            proc = subprocess.run(command, cwd=copy, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"FAILED: README line {number}: still running after {BLOCK_TIMEOUT_S} s")
            return 1
        if proc.returncode != 0:
            print(proc.stdout[-6000:])
            print(f"FAILED: README line {number}: exit status {proc.returncode}")
            return 1
    print(f"all {len(blocks)} runnable README blocks ran")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--fixtures", type=Path, default=REPO.parent / "shared" / "fixtures")
    parser.add_argument("--list", action="store_true", help="print the blocks, run nothing")
    parser.add_argument("--keep", action="store_true", help="keep the working copy")
    args = parser.parse_args(argv)
    try:
        blocks = runnable_blocks(args.readme.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for number, _language, body in blocks:
            print(f"--- README line {number}:\n{body}", end="")
        return 0
    if not blocks:
        print(f"{args.readme}: no block is marked {MARKER}", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="d2stream-readme-"))
    try:
        return run_blocks(blocks, fresh_copy(root, args.fixtures))
    finally:
        if args.keep:
            print(f"working copy kept in {root / 'd2stream'}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Run ``d2stream`` as a user does: a real subprocess, capturing its exit status and output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def d2stream(*args: str, cwd: Path | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli.main", *map(str, args)],
        cwd=cwd or REPO_ROOT, capture_output=True, text=True, timeout=timeout,
    )

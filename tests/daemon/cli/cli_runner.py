"""Run ``d2stream`` as a user does: a real subprocess, capturing its exit status and output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def d2stream(*args: str, cwd: Path | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli.main", *map(str, args)],
        cwd=cwd or REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=env,
    )

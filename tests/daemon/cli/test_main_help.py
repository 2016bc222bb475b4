"""``d2stream --help`` is written for users: what the tool does, first steps, every command."""

from __future__ import annotations

import re
import subprocess
import sys

from daemon.cli.main import SUBCOMMANDS
from tests.daemon.daemon_helpers import REPO_ROOT, subprocess_env


def test_help_describes_the_tool_for_users() -> None:
    proc = subprocess.run([sys.executable, "-m", "daemon.cli.main", "--help"], cwd=REPO_ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    description = text.split("\n\n")[1]
    assert description.startswith("Run Detectron2 models on small CPU machines")
    assert not re.search(r"``|:\w+:`|entry point|subcommand module", text)  # no RST, no internals
    assert "d2stream run --config config.yaml" in text
    for name in SUBCOMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\b", text, re.MULTILINE), name

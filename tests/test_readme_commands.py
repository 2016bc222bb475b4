"""Every README command runs as written on a fresh copy (``.ci/readme_commands.py``), and every
relative link of README and docs/ leads to a file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_fixtures

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / ".ci" / "readme_commands.py"


def run_script(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_readme_commands_run_as_written() -> None:
    require_fixtures()
    proc = run_script(timeout=1800)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr
    assert "all 3 runnable README blocks ran" in proc.stdout


def test_quick_start_and_daemon_blocks_are_marked_runnable() -> None:
    listing = run_script("--list").stdout
    for command in ("d2stream export", "d2stream predict", "d2stream bench", "Predictor(",
                    "d2stream check-config config.yaml", "d2stream run --config config.yaml"):
        assert command in listing, command


def test_a_failing_block_fails_the_check_naming_its_line(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- runnable -->\n```sh\ntrue\n```\n\n<!-- runnable -->\n"
                      "```sh\necho before\nls no-such-file\necho after\n```\n", encoding="utf-8")
    proc = run_script("--readme", str(readme), timeout=300)
    assert proc.returncode == 1
    assert "FAILED: README line 10: exit status 2" in proc.stdout
    output = proc.stdout.split("echo after\n", 1)[1]  # what the block printed
    assert output.startswith("before\n") and "after" not in output  # stopped at the error


def test_a_marker_without_a_block_is_an_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("<!-- runnable -->\nls\n", encoding="utf-8")
    proc = run_script("--readme", str(readme))
    assert proc.returncode == 2
    assert "line 1: <!-- runnable --> is not followed by a ```sh or ```python block" in proc.stderr


def test_relative_links_lead_to_files() -> None:
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text("utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            assert (page.parent / target).exists(), f"{page.name}: link to missing {target}"

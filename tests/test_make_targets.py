"""``make run`` installs what the main job needs (runtime + [export]); ``make test`` the rest."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def planned_installs(target: str, tmp_path: Path) -> list[str]:
    """The ``pip install`` specs ``make TARGET`` would run on a fresh machine (``make -n -B``)."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("make not found: install it with bash .ci/system-deps.sh", pytrace=False)
    plan = subprocess.run([make, "-n", "-B", target, f"VENV={tmp_path / 'venv'}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True)
    return re.findall(r"pip install -q -e '(\S+)'", plan.stdout)


def test_make_run_installs_runtime_and_export_only(tmp_path: Path) -> None:
    assert planned_installs("run", tmp_path) == [".[export]"]


def test_make_test_installs_the_dev_extra(tmp_path: Path) -> None:
    assert planned_installs("test", tmp_path) == [".[export]", ".[dev]"]


def test_license_is_an_spdx_expression_with_a_setuptools_that_reads_it() -> None:
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^license = "Apache-2.0"$', text, re.MULTILINE)  # not {text = ...}
    assert re.search(r'^requires = \["setuptools>=77"', text, re.MULTILINE)  # reads PEP 639

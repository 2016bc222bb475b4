"""Shared test set-up for export_tools.checkpoint: where the Detectron2 fixtures live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES_DIR = REPO_ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``../shared/fixtures`` relative to the repository root; fails the test when missing."""
    if not (FIXTURES_DIR / "README.md").is_file():
        pytest.fail(
            f"Detectron2 fixtures are missing: expected {FIXTURES_DIR} (../shared/fixtures "
            "relative to the repository root) with README.md and one folder per model",
            pytrace=False,
        )
    return FIXTURES_DIR

"""Evaluation test fixtures: the shared Detectron2 fixture folder, resolved from the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO.parent / "shared" / "fixtures"


def fixtures_path() -> Path:
    if not (FIXTURES / "README.md").is_file():
        pytest.fail(f"Detectron2 fixtures not found at {FIXTURES} (expected ../shared/fixtures "
                    "beside the repository)", pytrace=False)
    return FIXTURES


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return fixtures_path()


@pytest.fixture(scope="session")
def shapes_val(fixtures: Path) -> Path:
    return fixtures / "shapes_val"

"""Helpers for the config tests: where the golden fixtures are, and flattening nested dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ALL_MODELS, FIXTURES_DIR, require_fixtures  # noqa: F401

FIXTURE_MODELS = ALL_MODELS


def fixture_config_path(model: str) -> Path:
    """Path of a fixture model's config.yaml; fails the test clearly when it is missing."""
    path = require_fixtures() / model / "config.yaml"
    if not path.is_file():
        pytest.fail(f"golden fixture {path} is missing from ../shared/fixtures")
    return path


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"A": {"B": 1}} -> {"A.B": 1}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat

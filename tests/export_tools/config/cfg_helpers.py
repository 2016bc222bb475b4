"""Helpers for the config tests: where the golden fixtures are, and flattening nested dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES_DIR = REPO_ROOT.parent / "shared" / "fixtures"

# The fixture models whose config.yaml the tests load (see ../shared/fixtures/README.md).
FIXTURE_MODELS = (
    "cascade_mask_rcnn_R_50_FPN",
    "faster_rcnn_R_50_DC5",
    "faster_rcnn_R_50_FPN",
    "faster_rcnn_X_FPN_gn_rgb",
    "keypoint_rcnn_R_50_FPN",
    "mask_rcnn_R_50_C4",
    "mask_rcnn_R_50_FPN",
    "mask_rcnn_R_50_FPN_demo",
    "panoptic_fpn_R_50",
    "retinanet_R_50_FPN",
)


def fixture_config_path(model: str) -> Path:
    """Path of a fixture model's config.yaml; fails the test clearly when it is missing."""
    path = FIXTURES_DIR / model / "config.yaml"
    if not path.is_file():
        pytest.fail(
            f"golden fixture {path} is missing: the tests need ../shared/fixtures next to the "
            f"repository root ({FIXTURES_DIR})"
        )
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

"""Evaluation test fixtures: the shared Detectron2 fixture folder, resolved from the repo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.inference.instances import Instances
from tests.conftest import require_fixtures


def fixtures_path() -> Path:
    return require_fixtures()


@pytest.fixture(scope="session")
def shapes_val(fixtures: Path) -> Path:
    return fixtures / "shapes_val"


def load_expected(path: Path) -> Instances:
    """Detectron2's saved results for one fixture image as :class:`Instances`."""
    data = np.load(path)
    masks = data["masks"] if "masks" in data else None
    h, w = masks.shape[1:] if masks is not None else _image_hw(path)
    return Instances(
        (h, w), data["boxes"], data["scores"], data["classes"], pred_masks=masks,
        pred_keypoints=data["keypoints"] if "keypoints" in data else None,
    )


def _image_hw(npz: Path) -> tuple[int, int]:
    image = cv2.imread(str(npz.with_name(npz.name.replace("expected_", "image_")).with_suffix(
        ".png")))
    return image.shape[0], image.shape[1]


@pytest.fixture(scope="session")
def exported_model(export_fixture_model):
    """``exported_model(name) -> Path``: the suite-wide export of a fixture model (once)."""
    return export_fixture_model

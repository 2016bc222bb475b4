"""Suite-wide fixtures: the Detectron2 golden fixtures and models exported from them (once).

The fixtures live in ``../shared/fixtures`` relative to the repository root. When the folder is
missing every test that needs it fails with a message saying so: nothing is skipped silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT.parent / "shared" / "fixtures"

ALL_MODELS = ("cascade_mask_rcnn_R_50_FPN", "faster_rcnn_R_50_DC5", "faster_rcnn_R_50_FPN",
              "faster_rcnn_X_FPN_gn_rgb", "keypoint_rcnn_R_50_FPN", "mask_rcnn_R_50_C4",
              "mask_rcnn_R_50_FPN", "mask_rcnn_R_50_FPN_demo", "panoptic_fpn_R_50",
              "retinanet_R_50_FPN")
MODELS_WITH_PKL = ("faster_rcnn_R_50_FPN", "mask_rcnn_R_50_FPN", "mask_rcnn_R_50_FPN_demo")
BOX_MODELS = ("faster_rcnn_R_50_FPN", "faster_rcnn_R_50_DC5", "faster_rcnn_X_FPN_gn_rgb",
              "retinanet_R_50_FPN", "mask_rcnn_R_50_C4", "mask_rcnn_R_50_FPN")
MASK_MODELS = ("mask_rcnn_R_50_FPN", "mask_rcnn_R_50_C4", "mask_rcnn_R_50_FPN_demo")
# LazyConfig models under fixtures/lazy/ that the exporter supports (export them as "lazy/NAME")
LAZY_MODELS = ("mask_rcnn_R_50_FPN_100ep_LSJ", "mask_rcnn_regnetx_4gf_dds_FPN_100ep_LSJ",
               "mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ", "mask_rcnn_vitdet_b_100ep",
               "mask_rcnn_mvitv2_t_3x")


def require_fixtures() -> Path:
    """The fixture folder, or a clear test failure when it is absent."""
    if not (FIXTURES_DIR / "README.md").is_file():
        pytest.fail(
            f"Detectron2 fixtures are missing: expected {FIXTURES_DIR} (../shared/fixtures "
            "relative to the repository root) with README.md and one folder per model",
            pytrace=False,
        )
    return FIXTURES_DIR


def manifest(model: str) -> dict:
    return json.loads((require_fixtures() / model / "manifest.json").read_text())


@pytest.fixture(scope="session", autouse=True)
def private_d2stream_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``D2STREAM_CACHE`` of this test session (daemons started by tests inherit it): the
    backend choices of ``backend: auto`` and zoo exports never land in the user's cache."""
    folder = tmp_path_factory.mktemp("d2stream-cache")
    before = os.environ.get("D2STREAM_CACHE")
    os.environ["D2STREAM_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("D2STREAM_CACHE", None)
    else:
        os.environ["D2STREAM_CACHE"] = before


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return require_fixtures()


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return require_fixtures()


# Models exported beforehand (``.ci/aarch64-export.py``) for a test run on a machine without the
# export tools: the aarch64 suite under emulation (``make test-aarch64``) sets it.
PREEXPORTED_ENV = "D2STREAM_PREEXPORTED"


def fixture_export_name(name: str, weights: str = "model_final.pth") -> str:
    """File name of the export of fixture model ``name`` from ``weights``."""
    return f"{name.replace('/', '_')}-{Path(weights).suffix[1:]}.onnx"


def export_fixture(name: str, weights: str, out_dir: Path) -> Path:
    """Export fixture model ``name`` (its ``config.yaml`` + ``weights``) into ``out_dir``."""
    from export_tools.export import export_model

    folder = require_fixtures() / name
    meta = manifest(name)
    return export_model(
        folder / "config.yaml", folder / weights, out_dir / fixture_export_name(name, weights),
        class_names=meta["thing_classes"], model_name=name,
        keypoint_names=meta.get("keypoint_names"), stuff_classes=meta.get("stuff_classes"),
    )


def preexported(name: str, weights: str = "model_final.pth") -> Path | None:
    """The export of ``name`` in ``$D2STREAM_PREEXPORTED`` when that is set (else None); a file
    missing there fails the test by name."""
    folder = os.environ.get(PREEXPORTED_ENV)
    if not folder:
        return None
    path = Path(folder) / fixture_export_name(name, weights)
    if not path.is_file():
        pytest.fail(f"{PREEXPORTED_ENV}={folder} has no {path.name}: run .ci/aarch64-export.py "
                    f"{folder} (or unset {PREEXPORTED_ENV} to export here)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def export_fixture_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``export_fixture_model(name, weights="model_final.pth")`` -> exported ``.onnx`` (cached;
    taken from ``$D2STREAM_PREEXPORTED`` when that is set)."""
    cache: dict[tuple[str, str], Path] = {}
    out_dir = tmp_path_factory.mktemp("exported")

    def export(name: str, weights: str = "model_final.pth") -> Path:
        key = (name, weights)
        if key not in cache:
            cache[key] = preexported(name, weights) or export_fixture(name, weights, out_dir)
        return cache[key]

    return export


@pytest.fixture(scope="session")
def exported(export_fixture_model: Callable[..., Path]) -> Callable[[str], Path]:
    """``exported(name)`` -> the fixture model ``name`` exported from its ``.pth`` (the same
    session cache as :func:`export_fixture_model`)."""
    return export_fixture_model

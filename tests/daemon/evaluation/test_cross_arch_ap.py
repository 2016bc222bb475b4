"""AP of the same ONNX files on aarch64 against their x86 figures (``make test-aarch64``).

``.ci/aarch64-export.py`` exports the demo Mask R-CNN (fp32, and int8 with
``--int8-format`` u8s8 and s8s8) on x86 and measures its box/mask AP on ``shapes_val`` there
(``x86_ap.json``); under aarch64 emulation this test evaluates the very same files with the
aarch64 wheels (ONNX Runtime's NEON kernels, its other int8 packing) and compares. fp32 must
agree as closely as the x86 export agrees with Detectron2 (0.1 AP); int8 within the int8 budget
of the performance targets (1.0 AP). The aarch64 figures are written to
``$D2STREAM_AARCH64_REPORT`` for docs/aarch64.md.

It needs that reference: outside the aarch64 run (no ``D2STREAM_PREEXPORTED``) it is skipped
with that reason; there, the x86 side of the comparison is the suite's own
test_eval_fixture_models.py.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

from daemon.cli.main import main
from tests.conftest import PREEXPORTED_ENV

FP32_TOLERANCE = 0.1
INT8_TOLERANCE = 1.0
# 42 images under emulation, about 75x slower than the host: beyond the suite's 600 s default
pytestmark = pytest.mark.timeout(1800)


def _reference() -> tuple[Path, dict]:
    folder = os.environ.get(PREEXPORTED_ENV)
    if not folder:
        pytest.skip(f"cross-architecture AP: runs in make test-aarch64 ({PREEXPORTED_ENV} unset)")
    path = Path(folder) / "x86_ap.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run .ci/aarch64-export.py {folder} first",
                    pytrace=False)
    return Path(folder), json.loads(path.read_text())


@pytest.mark.parametrize(("tag", "tolerance"), [("fp32", FP32_TOLERANCE),
                                                ("int8", INT8_TOLERANCE),
                                                ("int8_s8s8", INT8_TOLERANCE)])
def test_ap_equals_the_x86_figure(tag: str, tolerance: float, shapes_val: Path,
                                  tmp_path: Path) -> None:
    folder, reference = _reference()
    expected = reference[tag]
    report_path = tmp_path / "report.json"
    rc = main(["eval", str(folder / expected["file"]), "--coco-json",
               str(shapes_val / "annotations.json"), "--images", str(shapes_val / "images"),
               "--report", str(report_path), "--backend", "onnxruntime", "--no-progress"])
    assert rc == 0
    report = json.loads(report_path.read_text())
    ours = {t: report[t]["AP"] for t in ("bbox", "segm")}
    _record(tag, ours)
    diffs = {t: ours[t] - expected[t] for t in ours}
    assert all(abs(d) <= tolerance for d in diffs.values()), (
        f"{tag} on {platform.machine()}: AP {ours} vs x86 {expected} (differences {diffs})")


def _record(tag: str, figures: dict[str, float]) -> None:
    """Merge this run's figures into ``$D2STREAM_AARCH64_REPORT`` (when set)."""
    target = os.environ.get("D2STREAM_AARCH64_REPORT")
    if not target:
        return
    path = Path(target)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[tag] = {"machine": platform.machine(), **figures}
    path.write_text(json.dumps(data, indent=2) + "\n")

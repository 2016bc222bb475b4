"""x86 half of ``make test-aarch64``: the models and reference figures the aarch64 side checks.

    .venv/bin/python .ci/aarch64-export.py OUT_DIR

Writes into OUT_DIR (kept between runs; rebuilt when the exporter's source changes):
- every fixture model exported from its ``.pth``, named as the test-suite's own exports
  (``tests.conftest.fixture_export_name``), so tests run with ``D2STREAM_PREEXPORTED=OUT_DIR``
  use these files instead of exporting (the aarch64 side has no export tools);
- ``mask_rcnn_R_50_FPN_demo-int8.onnx`` and ``-int8_s8s8.onnx``: the demo model's int8 exports
  (``--int8-format`` u8s8, the default, and s8s8), calibrated on its fixture images;
- ``x86_ap.json``: box/mask AP of the demo model's fp32 and int8 files on ``shapes_val``, measured
  here (x86) with the same files the aarch64 side evaluates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from daemon.cli.main import main as d2stream  # noqa: E402
from tests.conftest import ALL_MODELS, export_fixture, fixture_export_name  # noqa: E402
from tests.conftest import require_fixtures as fixtures  # noqa: E402

DEMO = "mask_rcnn_R_50_FPN_demo"
# tag in x86_ap.json -> (--int8-format, file)
INT8 = {"int8": ("u8s8", f"{DEMO}-int8.onnx"), "int8_s8s8": ("s8s8", f"{DEMO}-int8_s8s8.onnx")}
log = logging.getLogger("aarch64-export")


def source_stamp() -> str:
    """Changes whenever the exporter or the fixture list changes."""
    digest = hashlib.sha256(" ".join(ALL_MODELS).encode())
    for path in sorted((REPO / "export_tools").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def export_all(out: Path) -> None:
    for name in ALL_MODELS:
        log.info("exporting %s", name)
        export_fixture(name, "model_final.pth", out)
    demo = fixtures() / DEMO
    for int8_format, name in INT8.values():
        rc = d2stream(["export", "--config-file", str(demo / "config.yaml"),
                       "--weights", str(demo / "model_final.pth"), "--output", str(out / name),
                       "--int8", "--calibration", str(demo), "--int8-format", int8_format,
                       "--name", DEMO])
        if rc:
            raise SystemExit(f"int8 export of {DEMO} ({int8_format}) failed ({rc})")


def x86_ap(out: Path) -> dict:
    """AP of the demo model's fp32 and int8 files on shapes_val, measured on this machine."""
    val = fixtures() / "shapes_val"
    figures = {}
    files = {"fp32": fixture_export_name(DEMO)} | {t: name for t, (_, name) in INT8.items()}
    for tag, name in files.items():
        report = out / f"x86_{tag}_report.json"
        rc = d2stream(["eval", str(out / name), "--coco-json", str(val / "annotations.json"),
                       "--images", str(val / "images"), "--report", str(report),
                       "--backend", "onnxruntime", "--no-progress"])
        if rc:
            raise SystemExit(f"x86 eval of {name} failed ({rc})")
        data = json.loads(report.read_text())
        figures[tag] = {"file": name, **{t: data[t]["AP"] for t in ("bbox", "segm")}}
    return figures


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stamp_file = out / "stamp.txt"
    if stamp_file.is_file() and stamp_file.read_text() == source_stamp():
        log.info("%s is up to date", out)
        return 0
    export_all(out)
    (out / "x86_ap.json").write_text(json.dumps(x86_ap(out), indent=2) + "\n")
    stamp_file.write_text(source_stamp())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

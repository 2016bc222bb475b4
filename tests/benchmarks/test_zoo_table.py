"""The README's model-zoo table is the rendering of docs/zoo_status.json (no Detectron2 needed)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.zoo_sweep import run_group, selected, verdict
from benchmarks.zoo_table import (
    BEGIN,
    END,
    FINDINGS_FILE,
    README,
    STATUS_FILE,
    load,
    render,
    splice,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

SMALL = {
    "configs/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml":
        {"status": "parity", "detail": "2 images, 30 detections", "date": "2026-12-03"},
    "configs/COCO-Detection/fast_rcnn_R_50_FPN_1x.yaml":
        {"status": "refused", "detail": "key MODEL.LOAD_PROPOSALS: unsupported | value",
         "date": "2026-12-02"},
    "configs/Misc/x.yaml": {"status": "mismatch", "detail": "image_0.png: score differs",
                            "date": "2026-12-03"},
    "configs/quick_schedules/y.yaml": {"status": "pending", "detail": "", "date": ""},
}


def test_readme_table_is_the_rendering_of_the_committed_json() -> None:
    readme = README.read_text(encoding="utf-8")
    assert splice(readme, render(load(STATUS_FILE), load(FINDINGS_FILE))) == readme
    proc = subprocess.run([sys.executable, "-m", "benchmarks.zoo_table", "--check"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_every_config_of_the_json_is_a_row_of_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    table = readme[readme.index(BEGIN):readme.index(END)]
    status = load(STATUS_FILE)
    assert len(status) >= 100  # the whole zoo: YAML and LazyConfig files
    for name in status:
        assert f"| `{name}` |" in table, name
    assert {e["status"] for e in status.values()} <= {"parity", "mismatch", "refused", "error",
                                                       "pending"}


def test_rendering_of_a_small_json() -> None:
    lines = render(SMALL).splitlines()
    assert lines[0] == ("4 configs: 1 parity, 1 mismatch, 1 refused, 1 not yet compared "
                        "(swept 2026-12-02 to 2026-12-03).")
    assert lines[2:4] == ["| config | status | detail |", "| --- | --- | --- |"]
    assert lines[4:] == [
        "| `configs/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml` | parity | "
        "2 images, 30 detections |",
        "| `configs/COCO-Detection/fast_rcnn_R_50_FPN_1x.yaml` | refused | "
        "key MODEL.LOAD_PROPOSALS: unsupported \\| value |",
        "| `configs/Misc/x.yaml` | **mismatch** | image_0.png: score differs |",
        "| `configs/quick_schedules/y.yaml` | not yet compared |  |",
    ]


def test_a_finding_follows_the_sweeps_detail_and_keeps_its_status() -> None:
    lines = render(SMALL, {"configs/Misc/x.yaml": "a tie (test_x.py)."}).splitlines()
    assert "| `configs/Misc/x.yaml` | **mismatch** | image_0.png: score differs Finding: a tie " \
           "(test_x.py). |" in lines


def test_every_finding_names_a_config_of_the_sweep() -> None:
    status = load(STATUS_FILE)
    for name in load(FINDINGS_FILE):
        assert name in status, name
        assert status[name]["status"] != "parity", f"{name}: a finding for a row that passes"


def test_check_fails_on_a_stale_readme_and_the_rewrite_fixes_it(tmp_path: Path) -> None:
    status_file = tmp_path / "status.json"
    status_file.write_text(json.dumps(SMALL), encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n", encoding="utf-8")
    args = [sys.executable, "-m", "benchmarks.zoo_table", "--status-file", str(status_file),
            "--readme", str(readme)]
    check = subprocess.run([*args, "--check"], cwd=REPO_ROOT, capture_output=True, timeout=60)
    assert check.returncode == 1
    assert subprocess.run(args, cwd=REPO_ROOT, timeout=60).returncode == 0
    text = readme.read_text(encoding="utf-8")
    assert text == f"# x\n\nbefore\n{BEGIN}\n{render(SMALL)}{END}\nafter\n"
    assert subprocess.run([*args, "--check"], cwd=REPO_ROOT, timeout=60).returncode == 0


def test_sweep_selection_keeps_results_unless_named() -> None:
    names = list(SMALL)
    assert selected(names, SMALL, None) == ["configs/quick_schedules/y.yaml"]
    assert selected(names, SMALL, ["configs/COCO-Detection"]) == names[:2]
    assert selected(names, SMALL, ["configs/Misc/x.yaml"]) == ["configs/Misc/x.yaml"]


def test_verdicts_from_a_verify_report_and_from_a_refusal(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    image = {"image": "/x/image_0.png", "num_reference": 3, "box_max_abs_px": 0.002,
             "score_max_abs": 1e-6, "mask_iou_min": None, "keypoint_max_abs_px": None,
             "failures": []}
    report.write_text(json.dumps({"passed": True, "images": [image]}), encoding="utf-8")
    assert verdict(0, report, "", ()) == {
        "status": "parity", "detail": "1 images, 3 detections; max box 0.002 px, max score 1e-06"}
    empty = {**image, "num_reference": 0}
    report.write_text(json.dumps({"passed": True, "images": [empty, empty]}), encoding="utf-8")
    assert verdict(0, report, "", ())["detail"] == (
        "2 images, 0 detections (nothing compared: weak evidence)")
    sem = "...\nsem_seg pixel agreement: min 0.999800 over 2 image(s) (need >= 0.999)\n"
    assert verdict(0, report, sem, ()) == {
        "status": "parity", "detail": "sem_seg pixel agreement min 0.999800"}
    assert verdict(1, report, sem.replace("0.999800", "0.5"), ())["status"] == "mismatch"
    pan = sem + "panoptic_seg pixel agreement: min 0.943000 over 2 image(s) (need >= 0.999)\n"
    assert verdict(1, report, pan, ()) == {"status": "mismatch", "detail": (
        "panoptic_seg pixel agreement: min 0.943000 over 2 image(s) (need >= 0.999)")}
    both = pan.replace("0.943000", "0.999900")
    assert verdict(0, report, both, ())["detail"] == (
        "sem_seg pixel agreement min 0.999800, panoptic_seg pixel agreement min 0.999900")
    image["failures"] = ["score differs by 0.002 (tolerance 0.0001)", "mask IoU 0.5 < 0.99"]
    report.write_text(json.dumps({"passed": False, "images": [image]}), encoding="utf-8")
    assert verdict(1, report, "", ()) == {
        "status": "mismatch", "detail": "image_0.png: score differs by 0.002 (tolerance 0.0001)"}
    out = "Traceback...\nexport_tools.errors.ConfigError: file /d2/a.yaml, key K: no\n"
    assert verdict(1, tmp_path / "none.json", out, (Path("/d2"),)) == {
        "status": "refused", "detail": "file a.yaml, key K: no"}
    assert verdict(3, tmp_path / "none.json", "boom\n", ())["status"] == "error"


def test_a_timeout_kills_the_children_of_the_verify_script_too(tmp_path: Path) -> None:
    log_path = tmp_path / "log.txt"
    with log_path.open("w", encoding="utf-8") as log:
        rc = run_group(["bash", "-c", "sleep 60 & echo $!; wait"], {}, log, timeout=1)
    assert rc is None
    child = log_path.read_text(encoding="utf-8").split()[0]
    stat = Path(f"/proc/{child}/stat")
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously

    def alive() -> bool:
        try:
            return stat.read_text().split()[2] != "Z"  # a zombie is dead, not yet reaped
        except OSError:
            return False

    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive()

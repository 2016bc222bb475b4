"""Every Detectron2 model-zoo config through ``d2stream verify``, merged into docs/zoo_status.json.

    PYTHONPATH=. python -m benchmarks.zoo_sweep --d2-python ../d2venv/bin/python \\
        --d2-src ../detectron2-src [--only REL_OR_PREFIX ...] [--timeout 600]

The configs are every YAML file under the Detectron2 checkout's ``configs/`` (``Base-*.yaml``
excepted) and the LazyConfig model files (``configs/new_baselines/*.py``,
``projects/ViTDet/configs/**/*.py`` and ``projects/MViTv2/configs/*.py`` outside ``common/``),
named by their path in the checkout. For each one:

1. our own reader and ``check_supported`` read it (here, without Detectron2); a ConfigError is
   recorded as ``refused`` with its message;
2. YAML: ``benchmarks/zoo_verify.sh`` (synthetic calibrated weights, export, ``d2stream verify``
   against Detectron2 at test size 320); LazyConfig: ``benchmarks.zoo_lazy_verify`` (the same
   steps, Detectron2's model built by ``LazyConfig``/``instantiate``);
3. ``parity`` (every image within the verify tolerances), ``mismatch`` (the first failure of the
   report) or ``error`` (anything else: the last line the run printed, or the timeout).

Incremental: configs already in the JSON keep their result (new ones are added as ``pending``)
unless ``--only`` names them (a path, or a folder prefix such as ``configs/COCO-Detection``).
``python -m benchmarks.zoo_table`` renders the JSON into README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from d2common.errors import D2StreamError

logger = logging.getLogger("zoo_sweep")

REPO_ROOT = Path(__file__).resolve().parents[1]
STATUS_FILE = REPO_ROOT / "docs" / "zoo_status.json"
WORK_DIR = Path("/tmp/zoo_sweep")
PIXEL_AGREEMENT = 0.999  # d2stream verify's bar for semantic labels and panoptic ids
STATUSES = ("parity", "mismatch", "refused", "error", "pending")
# the zoo families first, then the LazyConfig files, then the rest of configs/
FIRST = ("configs/COCO-Detection/", "configs/COCO-InstanceSegmentation/",
         "configs/COCO-Keypoints/", "configs/COCO-PanopticSegmentation/")
LAZY_GLOBS = ("configs/new_baselines/*.py", "projects/ViTDet/configs/**/*.py",
              "projects/MViTv2/configs/*.py")
DETAIL_CHARS = 300


def list_configs(src: Path) -> list[str]:
    """Every zoo config of the checkout ``src``, by path relative to it, in sweep order."""
    yaml_files = [p for p in (src / "configs").rglob("*.yaml") if not p.name.startswith("Base-")]
    lazy = [p for pattern in LAZY_GLOBS for p in src.glob(pattern)
            if "common" not in p.relative_to(src).parts and p.name != "__init__.py"]
    names = sorted({p.relative_to(src).as_posix() for p in [*yaml_files, *lazy]})
    return sorted(names, key=_order)


def _order(name: str) -> tuple[int, str]:
    for rank, prefix in enumerate(FIRST):
        if name.startswith(prefix):
            return rank, name
    return (len(FIRST) + 1 if name.endswith(".yaml") else len(FIRST)), name


def load_status(path: Path = STATUS_FILE) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def save_status(status: dict[str, dict[str, Any]], path: Path = STATUS_FILE) -> None:
    ordered = dict(sorted(status.items(), key=lambda item: _order(item[0])))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ordered, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def selected(names: list[str], status: dict[str, Any], only: list[str] | None) -> list[str]:
    """``--only`` paths or prefixes; without it every config not yet run (``pending``)."""
    if only:
        return [n for n in names if any(n == o or n.startswith(o.rstrip("/") + "/")
                                        for o in only)]
    return [n for n in names if status.get(n, {}).get("status", "pending") == "pending"]


def shorten(text: str, *paths: Path) -> str:
    """One line without the machine's paths, at most :data:`DETAIL_CHARS` characters."""
    for path in paths:
        text = text.replace(f"{path}/", "")
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."


def yaml_wrapper(src: Path, rel: str, out: Path) -> Path:
    """The config zoo_verify.sh writes: the zoo file as ``_BASE_``, test size 320."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.yaml"
    inner = rel.removeprefix("configs/")
    path.write_text(f'_BASE_: "{src}/configs/{inner}"\nINPUT:\n  MIN_SIZE_TEST: 320\n',
                    encoding="utf-8")
    return path


def our_refusal(src: Path, rel: str, out: Path) -> str | None:
    """The exporter's own refusal of ``rel`` (its ConfigError message), or None."""
    from export_tools.modeling.supported import check_supported  # noqa: PLC0415

    try:
        if rel.endswith(".py"):
            from benchmarks.zoo_lazy_verify import our_lazy_config  # noqa: PLC0415
            our_lazy_config(src / rel)
        else:
            from export_tools.config import load_config  # noqa: PLC0415
            check_supported(load_config(yaml_wrapper(src, rel, out)))
    except D2StreamError as exc:
        return str(exc)
    return None


def verify_command(args: argparse.Namespace, rel: str, out: Path) -> list[str]:
    if rel.endswith(".py"):
        return [args.d2_python, "-m", "benchmarks.zoo_lazy_verify", str(args.d2_src / rel),
                str(out)]
    return ["bash", str(REPO_ROOT / "benchmarks" / "zoo_verify.sh"), rel.removeprefix("configs/"),
            str(out)]


def run_one(args: argparse.Namespace, rel: str) -> dict[str, Any]:
    """Status of one config: refused here, or the verify run's verdict."""
    out = WORK_DIR / rel.replace("/", "__").rsplit(".", 1)[0]
    paths = (args.d2_src, out)
    try:
        refusal = our_refusal(args.d2_src, rel, out)
    except Exception as exc:  # noqa: BLE001 - a crash of our reader is a result too
        return {"status": "error", "detail": shorten(f"{type(exc).__name__}: {exc}", *paths)}
    if refusal is not None:  # the wrapper zoo_verify.sh writes is not worth naming
        refusal = refusal.replace(f"file {out}/config.yaml, ", "")
        return {"status": "refused", "detail": shorten(refusal, *paths)}
    env = {**os.environ, "D2_PYTHON": args.d2_python, "D2_SRC": str(args.d2_src),
           "PYTHONPATH": str(REPO_ROOT)}
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.txt"
    with log_path.open("w", encoding="utf-8") as log:
        rc = run_group(verify_command(args, rel, out), env, log, args.timeout)
    if rc is None:
        return {"status": "error", "detail": f"timed out after {args.timeout:g} s"}
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return verdict(rc, out / "report.json", text, paths)


def recheck_refused(src: Path, status_file: Path) -> None:
    """Configs refused by an older exporter that this one reads: back to ``pending`` (to be
    compared by the next sweep); a changed refusal message is recorded."""
    status = load_status(status_file)
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    for rel, entry in status.items():
        if entry.get("status") != "refused":
            continue
        out = WORK_DIR / rel.replace("/", "__").rsplit(".", 1)[0]
        refusal = our_refusal(src, rel, out)
        if refusal is None:
            status[rel] = {"status": "pending", "date": today,
                           "detail": "read by the exporter since this date; not yet compared"}
        else:
            detail = shorten(refusal.replace(f"file {out}/config.yaml, ", ""), src, out)
            status[rel] = {**entry, "detail": detail, "date": today}
        logger.info("%s: %s", rel, status[rel]["status"])
    save_status(status, status_file)


def run_group(command: list[str], env: dict[str, str], log: Any, timeout: float) -> int | None:
    """Exit status of ``command``; None when it ran past ``timeout`` (its whole process group,
    the shell script's children too, is then killed)."""
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def verdict(rc: int, report_path: Path, output: str, paths: tuple[Path, ...]) -> dict[str, Any]:
    """parity / mismatch from the verify report; refused / error from the run's output."""
    if rc in (0, 1) and report_path.is_file():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        # semantic / panoptic models: their labels (and panoptic segment ids) were compared too
        labels = re.findall(r"^((sem_seg|panoptic_seg) pixel agreement: min ([\d.]+) .*)$",
                            output, re.M)
        if report["passed"] and rc == 0:
            detail = parity_summary(report)
            if labels:
                text = ", ".join(f"{kind} pixel agreement min {value}"
                                 for _, kind, value in labels)
                found = sum(im["num_reference"] for im in report["images"])
                detail = f"{detail}; {text}" if found else text
            return {"status": "parity", "detail": detail}
        below = [line for line, _, value in labels if float(value) < PIXEL_AGREEMENT]
        if below and report["passed"]:
            return {"status": "mismatch", "detail": shorten(below[0])}
        for image in report["images"]:
            if image["failures"]:
                name = Path(image["image"]).name
                return {"status": "mismatch", "detail": shorten(f"{name}: {image['failures'][0]}")}
        return {"status": "mismatch", "detail": shorten(_last_line(output), *paths)}
    line = _last_line(output)
    refused = re.search(r"\bConfigError: (.*)", line) or re.search(r"\berror: (file .*)", line)
    if refused:
        return {"status": "refused", "detail": shorten(refused.group(1), *paths)}
    return {"status": "error", "detail": shorten(f"exit {rc}: {line}", *paths)}


def parity_summary(report: dict[str, Any]) -> str:
    """``2 images, 35 detections; max box 0.0021 px, max score 4e-06, min mask IoU 1``."""
    images = report["images"]
    found = sum(im["num_reference"] for im in images)
    if not found:  # both models agree on nothing: no box, score or mask was compared
        return f"{len(images)} images, 0 detections (nothing compared: weak evidence)"
    parts = [f"{len(images)} images, {found} detections"]
    for key, label, pick, unit in (("box_max_abs_px", "box", max, " px"),
                                   ("score_max_abs", "score", max, ""),
                                   ("mask_iou_min", "mask IoU", min, ""),
                                   ("keypoint_max_abs_px", "keypoints", max, " px")):
        values = [im[key] for im in images if im[key] is not None]
        if values:
            parts.append(f"{'min' if pick is min else 'max'} {label} {pick(values):.2g}{unit}")
    return "; ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else parts[0]


def _last_line(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d2-python", required=True, help="python with torch and detectron2")
    parser.add_argument("--d2-src", type=Path, required=True, help="Detectron2 checkout")
    parser.add_argument("--only", nargs="+", metavar="REL", help="configs or folder prefixes")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per config")
    parser.add_argument("--status-file", type=Path, default=STATUS_FILE)
    parser.add_argument("--list", action="store_true", help="only add new configs as pending")
    parser.add_argument("--recheck-refused", action="store_true",
                        help="read the refused configs again with this checkout's exporter (no "
                             "Detectron2 run): those it now reads become pending")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.d2_src = args.d2_src.resolve()
    names = list_configs(args.d2_src)
    status = load_status(args.status_file)
    for name in names:
        status.setdefault(name, {"status": "pending", "detail": "", "date": ""})
    save_status(status, args.status_file)
    if args.recheck_refused:
        recheck_refused(args.d2_src, args.status_file)
        return 0
    todo = [] if args.list else selected(names, status, args.only)
    logger.info("%d configs, %d to run", len(names), len(todo))
    for i, rel in enumerate(todo, 1):
        start = time.monotonic()
        result = run_one(args, rel)
        result["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
        result["seconds"] = round(time.monotonic() - start)
        status = load_status(args.status_file)  # another sweep may have merged meanwhile
        status[rel] = result
        save_status(status, args.status_file)
        logger.info("[%d/%d] %s: %s (%d s) %s", i, len(todo), rel, result["status"],
                    result["seconds"], result["detail"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

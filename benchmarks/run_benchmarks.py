"""d2stream benchmarks: every figure is a ratio measured in this one run, on this machine.

    python -m benchmarks.run_benchmarks                      # all sections
    python -m benchmarks.run_benchmarks --sections latency,int8 --json out.json

Sections:
  latency    fp32 latency of full-width R50-FPN Faster / Mask R-CNN (and RetinaNet) at 800x1067
             and 480x640 against the FLOP floor at the CPU's theoretical peak, beside a large
             matmul's GFLOP/s measured in the same run
  backends   ONNX Runtime vs OpenVINO on the same graphs (when OpenVINO is installed)
  int8       int8 vs fp32 latency, and the box AP change on the fixtures' shapes_val scenes
  pi         a Pi-style setting: MIN_SIZE_TEST 320, int8, frames per second
  coldstart  process start to first detection, and resident memory
  daemon     daemon throughput vs the bare model (needs the daemon; reported as missing if not)

Models are built from the model-zoo configs with synthetic weights (see
``export_tools.perf.random_weights``) and cached under ``benchmarks/.cache``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from benchmarks import sections_extra
from benchmarks.bench_lib import (
    ORT,
    SIZES,
    ZOO,
    cpu_peak,
    end_to_end_run,
    graph_run,
    interleaved,
    load_average,
    log,
    machine_description,
    model_sizes,
    ort_matmul_gflops,
    size_hw,
)
from benchmarks.bench_lib import camera_frame as frame


def count_model_flops(path, size: str) -> Any:
    """FLOPs of the model on the camera frame for ``size`` (RoI parts with their real counts)."""
    from d2common.transforms import to_network_input
    from daemon.perf.flops import count_flops

    h, w = size_hw(size)
    x = to_network_input(frame(*SIZES[size]), "BGR", min(h, w), max(h, w))
    return count_flops(path, {"image": x})


def latency(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """fp32 latency vs the FLOP floor at theoretical peak, and vs a measured matmul."""
    from daemon.inference.predictor import Predictor
    from daemon.perf.cpu import matmul_gflops

    peak = cpu_peak()
    print(f"\n== fp32 latency vs FLOP floor ({peak.describe()})")
    rows = []
    for short, path, size, (h, w) in model_sizes(args.models, args.sizes):
        report = count_model_flops(path, size)
        pred = Predictor(path, num_threads=args.threads, min_size=h, max_size=w,
                         backend=ORT)
        image = frame(*SIZES[size])
        x = pred.preprocess(image)
        mm = {"ort": ort_matmul_gflops(threads=args.threads), "numpy": matmul_gflops()}
        t = interleaved({"graph": graph_run(pred, x), "e2e": end_to_end_run(pred, image)},
                        args.runs)
        mm["ort_after"] = ort_matmul_gflops(threads=args.threads)
        rows.append(_latency_row(short, size, report, peak.peak_gflops, t, mm, x.shape))
        _print_latency(rows[-1])
    out["latency"] = {"peak": peak.__dict__ | {"peak_gflops": peak.peak_gflops}, "rows": rows}


def _latency_row(short, size, report, peak_gflops, t, mm, shape) -> dict[str, Any]:
    gflop = report.total / 1e9
    floor = gflop / peak_gflops
    matmul = max(mm["ort"], mm["ort_after"])
    return {
        "model": short, "size": size, "input": list(shape[2:]), "gflop": gflop,
        "gflop_by_part": {k: v / 1e9 for k, v in report.by_scope(1).items()},
        "floor_s": floor, "graph_p50_s": t["graph"].p50, "graph_best_s": t["graph"].best,
        "e2e_p50_s": t["e2e"].p50, "e2e_best_s": t["e2e"].best,
        "efficiency_e2e": floor / t["e2e"].p50, "efficiency_graph": floor / t["graph"].p50,
        "achieved_gflops": gflop / t["graph"].p50, "matmul_gflops_ort": matmul,
        "matmul_gflops_numpy": mm["numpy"],
        "achieved_vs_matmul": gflop / t["graph"].p50 / matmul,
    }


def _print_latency(r: dict[str, Any]) -> None:
    parts = ", ".join(f"{k} {v:.1f}" for k, v in r["gflop_by_part"].items())
    print(f"{r['model']:<26} {r['size']:>8} (input {r['input'][0]}x{r['input'][1]}): "
          f"{r['gflop']:.1f} GFLOP ({parts})")
    print(f"    floor {r['floor_s'] * 1e3:7.0f} ms | graph p50 {r['graph_p50_s'] * 1e3:7.0f} ms "
          f"(best {r['graph_best_s'] * 1e3:.0f}) | end-to-end p50 {r['e2e_p50_s'] * 1e3:7.0f} ms"
          f" (best {r['e2e_best_s'] * 1e3:.0f})")
    print(f"    efficiency floor/e2e {r['efficiency_e2e']:.2f} (graph {r['efficiency_graph']:.2f})"
          f" | achieved {r['achieved_gflops']:.0f} GFLOP/s vs matmul "
          f"{r['matmul_gflops_ort']:.0f} (ORT) / {r['matmul_gflops_numpy']:.0f} (numpy) "
          f"GFLOP/s = {r['achieved_vs_matmul']:.2f} | load {load_average()}")


SECTIONS: dict[str, Callable[[argparse.Namespace, dict[str, Any]], None]] = {
    "latency": latency,
    "backends": sections_extra.backends,
    "int8": sections_extra.int8,
    "pi": sections_extra.pi_setting,
    "coldstart": sections_extra.cold_start,
    "daemon": sections_extra.daemon_throughput,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--models", default=",".join(ZOO),
                   help=f"zoo architectures for the latency and backend sections ({','.join(ZOO)})")
    p.add_argument("--sizes", default="800x1067,480x640", help="network input sizes HxW")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: all)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per variant")
    p.add_argument("--json", metavar="OUT.json", help="also write all figures as JSON")
    args = p.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    args.models = [m for m in args.models.split(",") if m]
    args.sizes = [s for s in args.sizes.split(",") if s]
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        p.error(f"unknown sections {unknown}")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("export_tools").setLevel(logging.WARNING)
    args = parse_args(argv)
    results: dict[str, Any] = {"machine": machine_description()}
    print("machine:", json.dumps(results["machine"], indent=1))
    for name in args.sections:
        log.info("section %s", name)
        SECTIONS[name](args, results)
    results["load_average_end"] = load_average()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())

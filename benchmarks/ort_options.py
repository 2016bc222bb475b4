"""Compare ONNX Runtime session options on a full-width model, interleaved in one run.

    python -m benchmarks.ort_options [--model faster_rcnn_R_50_FPN_3x] [--size 800x1067]

Variants: the shipped options (``daemon.inference.backends.ort_backend.session_options``: all
optimisations incl. the NCHWc layout, spinning worker threads), then one change each: extended /
basic optimisation (no NCHWc layout), no spinning, no memory arena, no memory pattern, denormals
flushed to zero, ORT's default session options, and one thread. Prints median and best latency
of each and the ratio to the shipped options.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from benchmarks.bench_lib import SIZES, camera_frame, interleaved, load_average, random_model
from d2common.transforms import to_network_input
from daemon.inference.backends.ort_backend import session_options

Level = ort.GraphOptimizationLevel


def _variant(change: Callable[[ort.SessionOptions], None] | None = None,
             base: Callable[[], ort.SessionOptions] = session_options) -> ort.SessionOptions:
    opts = base()
    opts.log_severity_level = 3
    if change is not None:
        change(opts)
    return opts


def _set(**values) -> Callable[[ort.SessionOptions], None]:
    def apply(opts: ort.SessionOptions) -> None:
        for key, value in values.items():
            setattr(opts, key, value)
    return apply


VARIANTS: dict[str, Callable[[], ort.SessionOptions]] = {
    "shipped (ALL + NCHWc, spin)": lambda: _variant(),
    "EXTENDED (no NCHWc layout)": lambda: _variant(
        _set(graph_optimization_level=Level.ORT_ENABLE_EXTENDED)),
    "BASIC": lambda: _variant(_set(graph_optimization_level=Level.ORT_ENABLE_BASIC)),
    "no spinning": lambda: _variant(base=lambda: session_options(spinning=False)),
    "no memory arena": lambda: _variant(_set(enable_cpu_mem_arena=False)),
    "no memory pattern": lambda: _variant(_set(enable_mem_pattern=False)),
    "denormals as zero": lambda: _variant(
        lambda o: o.add_session_config_entry("session.set_denormal_as_zero", "1")),
    "ORT defaults": lambda: _variant(base=ort.SessionOptions),
    "1 thread": lambda: _variant(_set(intra_op_num_threads=1)),
    "parallel executor (2 inter-op)": lambda: _variant(
        _set(execution_mode=ort.ExecutionMode.ORT_PARALLEL, inter_op_num_threads=2)),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="faster_rcnn_R_50_FPN_3x")
    p.add_argument("--path", help="an .onnx file to use instead of the synthetic --model")
    p.add_argument("--only", help="comma-separated variant names (default: all)")
    p.add_argument("--size", default="800x1067", choices=list(SIZES))
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    path = args.path or random_model(args.model)
    chosen = {k: v for k, v in VARIANTS.items()
              if not args.only or k in args.only.split(",") or k.startswith("shipped")}
    h, w = (int(v) for v in args.size.split("x"))
    x = to_network_input(camera_frame(*SIZES[args.size]), "BGR", h, w)
    sessions = {name: ort.InferenceSession(str(path), make(), providers=["CPUExecutionProvider"])
                for name, make in chosen.items()}
    runs = {name: _runner(sess, x) for name, sess in sessions.items()}
    print(f"{args.model} at {x.shape[2]}x{x.shape[3]}, load before {load_average()}")
    timings = interleaved(runs, args.runs)
    ref = timings[next(iter(VARIANTS))].p50
    for name, t in timings.items():
        print(f"{name:<34} {t.ms()}  x{t.p50 / ref:5.2f}")
    print(f"load after {load_average()}")
    return 0


def _runner(sess: ort.InferenceSession, x: np.ndarray) -> Callable[[], object]:
    return lambda: sess.run(None, {"image": x})


if __name__ == "__main__":
    sys.exit(main())

"""Shared pieces of the benchmark scripts: cached synthetic models, timers, machine description.

Timings on a shared machine drift while other processes come and go, so variants that are
compared are measured interleaved (one run of each per round) and reported by their median and
their best run; the load average before and after is printed with every table.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from daemon.perf.cpu import CpuPeak

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
CACHE = Path(os.environ.get("D2STREAM_BENCH_CACHE", REPO / "benchmarks" / ".cache"))

ZOO = {
    "faster_rcnn_R_50_FPN_3x": "COCO-Detection/faster_rcnn_R_50_FPN_3x",
    "mask_rcnn_R_50_FPN_3x": "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x",
    "retinanet_R_50_FPN_3x": "COCO-Detection/retinanet_R_50_FPN_3x",
}

# The sections that quote ONNX Runtime figures pin it (the Predictor's default, "auto", may
# pick another engine); the backends and Detectron2 sections compare engines explicitly.
ORT = "onnxruntime"

# network input size -> the camera frame it is resized from (4:3, ResizeShortestEdge)
SIZES = {"800x1067": (1080, 1440), "480x640": (720, 960)}

log = logging.getLogger("benchmarks")


@dataclass
class Timing:
    """Seconds of repeated runs of one variant."""

    values: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU seconds (all threads) per run

    @property
    def best(self) -> float:
        return min(self.values)

    @property
    def p50(self) -> float:
        return statistics.median(self.values)

    @property
    def cpu_p50(self) -> float:
        return statistics.median(self.cpu)

    @property
    def p90(self) -> float:
        return float(np.percentile(self.values, 90))

    def ms(self) -> str:
        return f"p50 {self.p50 * 1e3:7.1f} ms (best {self.best * 1e3:7.1f}, p90 " \
               f"{self.p90 * 1e3:7.1f})"


# Before each round, wait (at most QUIET_WAIT_S) for a moment when other processes leave the CPUs
# mostly idle: on a shared machine this keeps the figures close to what the hardware can do.
QUIET_WAIT_S = float(os.environ.get("D2STREAM_BENCH_QUIET_WAIT", "20"))
QUIET_IDLE = 0.8


def cpu_idle_fraction(window: float = 0.3) -> float:
    """Fraction of all CPUs' time spent idle over ``window`` seconds (from /proc/stat)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(window)
        idle1, total1 = sample()
    except OSError:
        return 1.0
    return (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_quiet(max_wait: float = QUIET_WAIT_S) -> float:
    """Wait until the CPUs are mostly idle (or ``max_wait`` passed); returns the idle fraction."""
    deadline = time.monotonic() + max_wait
    idle = cpu_idle_fraction()
    while idle < QUIET_IDLE and time.monotonic() < deadline:
        idle = cpu_idle_fraction()
    return idle


def interleaved(variants: dict[str, Callable[[], object]], rounds: int,
                warmup: int = 1) -> dict[str, Timing]:
    """Time every variant ``rounds`` times, one run of each per round (after ``warmup`` rounds)."""
    timings = {name: Timing() for name in variants}
    for r in range(warmup + rounds):
        if r >= warmup and QUIET_WAIT_S > 0:
            wait_for_quiet()
        for name, fn in variants.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if r >= warmup:
                timings[name].values.append(dt)
                timings[name].cpu.append(dc)
    return timings


def graph_run(predictor, net_input: np.ndarray) -> Callable[[], object]:
    """The bare network on a prepared input."""
    return lambda: predictor.run_network(net_input)


def end_to_end_run(predictor, image: np.ndarray) -> Callable[[], object]:
    """Pre-processing, network and post-processing (masks pasted) on a BGR frame."""
    return lambda: predictor.predict_compact(image).to_instances()


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


@functools.cache
def cpu_peak() -> CpuPeak:
    """This machine's peak, its clock measured once per benchmark run (every section and the
    machine line then quote the same figure)."""
    from daemon.perf.cpu import machine_cpu_peak

    return machine_cpu_peak()


def machine_description() -> dict[str, str]:
    import onnxruntime as ort

    peak = cpu_peak()
    info = {"cpu": peak.describe(), "python": platform.python_version(),
            "onnxruntime": ort.__version__, "numpy": np.__version__,
            "kernel": platform.release(), "load_average": load_average()}
    try:
        import openvino

        info["openvino"] = openvino.__version__
    except ImportError:
        pass
    return info


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:10]


def random_model(short: str, opts: Sequence[str] = ()) -> Path:
    """A cached full-width synthetic-weight model of a zoo architecture (see ``ZOO``)."""
    from export_tools.onnx_io import save_model
    from export_tools.perf.random_weights import build_random_model

    path = CACHE / f"{short}-{_key(short, tuple(opts), _source_stamp())}.onnx"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        log.info("building %s (%s)", path.name, " ".join(opts) or "zoo settings")
        model = build_random_model(ZOO[short], list(opts), model_name=short)
        save_model(model, path)  # atomic; external data over 2 GiB
    return path


def size_hw(size: str) -> tuple[int, int]:
    """A benchmark size ``"HxW"`` as ``(H, W)``."""
    h, w = (int(v) for v in size.lower().split("x"))
    return h, w


def model_sizes(models: Sequence[str],
                sizes: Sequence[str]) -> Iterator[tuple[str, Path, str, tuple[int, int]]]:
    """Every model x size of a run: the model's short name, its cached synthetic-weight
    export (:func:`random_model`), the size as written and as ``(H, W)``."""
    for short in models:
        path = random_model(short)
        for size in sizes:
            yield short, path, size, size_hw(size)


def int8_model(fp32: Path, calibration: Path, min_size: int | None, images: int = 8) -> Path:
    """The cached int8 version of ``fp32`` calibrated on ``images`` images at ``min_size``
    (None: the model's MIN_SIZE_TEST)."""
    from export_tools.quantize import QuantizeOptions, quantize_model

    path = fp32.with_name(f"{fp32.stem}-int8-{_key(min_size, images, str(calibration))}.onnx")
    if not path.is_file():
        log.info("quantising %s (calibration: %d images at %s)", fp32.name, images,
                 min_size or "the model's MIN_SIZE_TEST")
        quantize_model(fp32, path, calibration,
                       QuantizeOptions(max_images=images, min_size=min_size))
    return path


def _source_stamp() -> str:
    """Changes whenever the exporter's source changes (so cached models are rebuilt)."""
    digest = hashlib.sha256()
    for f in sorted((REPO / "export_tools").rglob("*.py")):
        digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


def calibration_folder() -> Path:
    """A folder of distinct fixture scenes (the models' held-out images), made once."""
    import shutil

    folder = CACHE / "calibration"
    if not folder.is_dir() or not any(folder.iterdir()):
        folder.mkdir(parents=True, exist_ok=True)
        seen: set[str] = set()
        for img in sorted(FIXTURES.glob("*/image_*.png")):
            digest = hashlib.sha256(img.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                shutil.copy(img, folder / f"{img.parent.name}_{img.name}")
    return folder


def camera_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A BGR scene of coloured shapes (the bench command's synthetic image)."""
    from daemon.demo.synthetic import synthetic_scene

    return synthetic_scene(h, w, seed)


def ort_matmul_gflops(n: int = 2048, threads: int | None = None, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n x n`` fp32 MatMul in ONNX Runtime (MLAS, the model's GEMM)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["C"])], "matmul",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n]),
         helper.make_tensor_value_info("B", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"A": rng.standard_normal((n, n), dtype=np.float32),
             "B": rng.standard_normal((n, n), dtype=np.float32)}
    sess.run(None, feeds)
    best = min(_timed(lambda: sess.run(None, feeds)) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0

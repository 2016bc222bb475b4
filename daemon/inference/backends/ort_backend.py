"""ONNX Runtime (CPU execution provider) backend, with session options tuned for latency.

Options and why (measured with ``benchmarks/ort_options.py``; figures in docs/performance.md):

- ``ORT_ENABLE_ALL``: constant folding, Conv+Relu / Conv+Add fusions and, on x86, the NCHWc
  layout transformer that runs convolutions on channel-blocked tensors.
- ``intra_op_num_threads`` = the requested count (default: one per physical core) and one
  inter-op thread: the graph is a single chain, so parallelism belongs inside the kernels.
- spinning worker threads (``session.intra_op.allow_spinning``) unless ``spin_wait`` is off
  (``model.spin_wait``): fastest, in a bare loop and in the daemon alike; off, the threads
  sleep between pieces of work, which saves power and heat for a few per cent of throughput.
  With ``spin_after_run`` off (Python API) they spin only during a run
  (``session.force_spinning_stop``): between runs the cores go to the caller's own work.
- denormals are NOT flushed to zero (``session.set_denormal_as_zero``): ONNX Runtime would set
  the flush-to-zero mode of the calling thread too, changing float behaviour of the whole process
  (numpy post-processing included), for no measurable gain on these graphs.
- optional optimised-graph cache: the first load saves the optimised graph next to the model;
  later loads read it with optimisation disabled (it was already optimised) for a faster start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from d2common.errors import ModelError
from d2common.onnx_files import data_file, has_external_data, model_files
from daemon.inference.backends.base import BackendOptions

log = logging.getLogger(__name__)


def session_options(num_threads: int | None = None,
                    level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                    spinning: bool = True, spin_after_run: bool = True) -> ort.SessionOptions:
    """Session options for one latency-bound inference stream."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if num_threads:
        opts.intra_op_num_threads = int(num_threads)
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if spinning and not spin_after_run:
        opts.add_session_config_entry("session.force_spinning_stop", "1")
    opts.log_severity_level = 3
    return opts


class OrtBackend:
    """A model in an ONNX Runtime CPU session."""

    name = "onnxruntime"

    def __init__(self, model_path: str | os.PathLike, options: BackendOptions) -> None:
        path = Path(model_path)
        self.session = _open_session(path, options)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.metadata_props = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, values))


def cache_file(model: Path, cache_dir: Path) -> Path:
    """Where the optimised graph of ``model`` is cached (invalidated by name when the model or
    ONNX Runtime changes)."""
    stats = [f.stat() for f in model_files(model)]  # the side file of external data too
    stamp = "-".join(f"{st.st_size}-{st.st_mtime_ns}" for st in stats)
    return cache_dir / f"{model.stem}-{stamp}-ort{ort.__version__}.onnx"


def _open_session(path: Path, options: BackendOptions) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    cache = cache_file(path, Path(options.optimized_cache)) if options.optimized_cache else None
    opts = session_options(options.num_threads, spinning=options.spin_wait,
                                    spin_after_run=options.spin_after_run)
    source = path
    if cache is not None and cache.is_file() and cache.stat().st_size > 0:
        source = cache
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    elif cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        opts.optimized_model_filepath = str(cache)
        if has_external_data(path):  # the optimised graph is as large: weights beside it too
            opts.add_session_config_entry(
                "session.optimized_model_external_initializers_file_name", data_file(cache).name)
            opts.add_session_config_entry(
                "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    try:
        return ort.InferenceSession(str(source), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types
        if source == cache:
            log.warning("optimised-graph cache %s unusable (%s); reloading %s", cache, exc, path)
            cache.unlink(missing_ok=True)
            data_file(cache).unlink(missing_ok=True)
            fresh = session_options(options.num_threads, spinning=options.spin_wait,
                                    spin_after_run=options.spin_after_run)
            return ort.InferenceSession(str(path), sess_options=fresh,
                                        providers=["CPUExecutionProvider"])
        raise ModelError(f"{path}: cannot be loaded by ONNX Runtime ({exc})") from exc


def load(model_path: str | os.PathLike, options: BackendOptions) -> OrtBackend:
    return OrtBackend(model_path, options)

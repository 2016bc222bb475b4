"""The daemon's ``model.backend`` setting: validated in the config, honoured by the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from d2common.errors import ModelError
from daemon.config import ConfigError, parse_config
from daemon.config.schema import WorkerSection
from daemon.inference.backends import available_backends
from daemon.pipeline.runner import worker_spec
from daemon.pipeline.supervisor import WorkerSupervisor
from daemon.pipeline.worker import WorkerSpec
from daemon.structures.metrics import Metrics

CONFIG = """
model: {path: m.onnx%s}
cameras:
  - name: front
    source: {type: opencv, url: clip.mp4}
"""


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    (tmp_path / "clip.mp4").write_bytes(b"video")
    return tmp_path


def test_backend_defaults_to_auto(base: Path) -> None:
    cfg = parse_config(CONFIG % "", base_dir=base, env={})
    assert cfg.model.backend == "auto"
    assert worker_spec(cfg, base / "m.onnx").backend == "auto" == WorkerSpec("m", 1, 0.5).backend
    for forced in ("onnxruntime", "openvino"):
        cfg = parse_config(CONFIG % f", backend: {forced}", base_dir=base, env={})
        assert cfg.model.backend == forced and worker_spec(cfg, base / "m.onnx").backend == forced


def test_optimized_cache_is_resolved_against_the_config_folder(base: Path) -> None:
    assert parse_config(CONFIG % "", base_dir=base, env={}).model.optimized_cache is None
    cfg = parse_config(CONFIG % ", optimized_cache: var/ort", base_dir=base, env={})
    assert cfg.model.optimized_cache == (base / "var" / "ort").resolve()


def test_unknown_backend_is_a_config_error_naming_the_key(base: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.backend"):
        parse_config(CONFIG % ", backend: tensorrt", base_dir=base, env={})


def _start(spec: WorkerSpec) -> dict:
    supervisor = WorkerSupervisor(spec, WorkerSection(), Metrics(), lambda r: None)
    try:
        return supervisor.start()
    finally:
        supervisor.stop(drain_timeout=1)


def test_worker_loads_with_the_configured_backend(exported) -> None:
    model = str(exported("faster_rcnn_R_50_FPN"))
    with pytest.raises(ModelError, match="unknown inference backend 'nope'"):
        _start(WorkerSpec(model, 1, 0.5, backend="nope"))
    for backend in ["auto", *available_backends()]:
        meta = _start(WorkerSpec(model, 1, 0.5, backend=backend))
        assert meta["meta_architecture"] == "GeneralizedRCNN" and len(meta["class_names"]) == 3


def test_worker_writes_the_optimized_graph_cache(exported, tmp_path: Path) -> None:
    model = str(exported("faster_rcnn_R_50_FPN"))
    cache = tmp_path / "ort-cache"
    for _ in range(2):  # the first start writes the cache, the second reads it
        meta = _start(WorkerSpec(model, 1, 0.5, backend="onnxruntime",
                                 optimized_cache=str(cache)))
        assert meta["meta_architecture"] == "GeneralizedRCNN" and len(meta["class_names"]) == 3
        assert [p.suffix for p in cache.iterdir()] == [".onnx"]


def test_spin_wait_setting_reaches_the_worker_spec(base: Path) -> None:
    """The worker's threads spin by default (ONNX Runtime's fastest); ``spin_wait: false``
    reaches the worker's spec."""
    cfg = parse_config(CONFIG % "", base_dir=base, env={})
    assert worker_spec(cfg, base / "m.onnx").spin_wait is True
    cfg = parse_config(CONFIG % ", spin_wait: false", base_dir=base, env={})
    assert worker_spec(cfg, base / "m.onnx").spin_wait is False


@pytest.mark.parametrize("spin", [True, False])
def test_spin_wait_reaches_the_onnxruntime_session(exported, spin: bool) -> None:
    from daemon.inference.predictor import Predictor  # noqa: PLC0415

    predictor = Predictor(exported("faster_rcnn_R_50_FPN"), num_threads=1, spin_wait=spin,
                          backend="onnxruntime")
    opts = predictor.backend.session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == str(int(spin))


def test_spinning_stops_after_each_run_only_when_asked(exported) -> None:
    """A bare Predictor keeps ONNX Runtime's threads spinning after a run (fastest back to
    back); ``spin_after_run=False`` sets ``session.force_spinning_stop`` so that they sleep
    between runs; without spinning at all there is nothing to stop."""
    from daemon.inference.predictor import Predictor  # noqa: PLC0415

    def entry(**kwargs) -> str:
        predictor = Predictor(exported("faster_rcnn_R_50_FPN"), num_threads=1,
                              backend="onnxruntime", **kwargs)
        opts = predictor.backend.session.get_session_options()
        return opts.get_session_config_entry("session.force_spinning_stop") \
            if opts.get_session_config_entry("session.intra_op.allow_spinning") == "1" else "-"

    with pytest.raises(RuntimeError):  # the key is absent by default
        entry()
    assert entry(spin_after_run=False) == "1"
    assert entry(spin_wait=False, spin_after_run=False) == "-"


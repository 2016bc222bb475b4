"""``backend: remote``: a Predictor whose network runs on a real ``d2stream serve``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from d2common.errors import ModelError
from d2common.image_io import read_image_bgr
from daemon.inference.backends import RemoteOptions
from daemon.inference.backends.remote_backend import RemoteError, config_parameters
from daemon.inference.predictor import Predictor
from tests.conftest import require_fixtures
from tests.daemon.serve_process import ServeProcess


@pytest.fixture(scope="module")
def server(demo_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(demo_model, tmp_path_factory.mktemp("serve"))
    yield proc
    proc.kill()


def _remote(server: ServeProcess, model: Path | str = "", **kw: object) -> Predictor:
    options = RemoteOptions(server.url, "demo", timeout_s=60, backoff_s=0.05, **kw)
    return Predictor(model, backend="remote", remote=options)


def _same(a, b) -> None:  # two Instances
    assert len(a) == len(b)
    for name in ("pred_boxes", "scores", "pred_classes", "pred_masks"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_remote_instances_equal_local_inference(server: ServeProcess, demo_model: Path) -> None:
    # d2stream serve runs onnxruntime, so the local reference does too (auto may pick openvino)
    local, remote = Predictor(demo_model, backend="onnxruntime"), _remote(server, demo_model)
    assert remote.metadata == local.metadata  # read from the server's model metadata
    for i in range(5):
        image = read_image_bgr(require_fixtures() / "mask_rcnn_R_50_FPN_demo" / f"image_{i}.png")
        _same(remote(image), local(image))
    assert remote.backend.stats["requests"] == 5


def test_wrong_model_name_is_a_one_line_error(server: ServeProcess) -> None:
    options = RemoteOptions(server.url, "nope", timeout_s=30)
    with pytest.raises(ModelError, match=r"server http://127.0.0.1:\d+ model 'nope'.*404"):
        Predictor("", backend="remote", remote=options)


def test_metadata_differing_from_the_local_model_is_refused(
        server: ServeProcess, export_fixture_model) -> None:
    other = export_fixture_model("faster_rcnn_R_50_FPN")
    with pytest.raises(ModelError, match=r"model 'demo': metadata differs from .*refusing"):
        _remote(server, other)


def test_server_down_retries_then_drops_or_falls_back(demo_model: Path, tmp_path: Path) -> None:
    proc = ServeProcess(demo_model, tmp_path)
    try:
        dropping = _remote(proc, retries=2)
        falling_back = _remote(proc, demo_model, fallback="local")
        image = read_image_bgr(require_fixtures() / "mask_rcnn_R_50_FPN_demo" / "image_0.png")
        expected = Predictor(demo_model, backend="onnxruntime")(image)
        proc.kill()
        with pytest.raises(RemoteError, match=r"unreachable.*after 3 attempts"):
            dropping(image)
        assert dropping.backend.stats["retries"] == 2
        _same(falling_back(image), expected)
        assert falling_back.backend.stats["fallbacks"] == 1
        proc.start()  # restarted: both recover without being rebuilt
        _same(dropping(image), expected)
        _same(falling_back(image), expected)
        assert falling_back.backend.stats["fallbacks"] == 1
    finally:
        proc.kill()


def test_triton_style_config_parameters_equal_the_metadata(server: ServeProcess,
                                                           demo_model: Path) -> None:
    """The client reads the metadata from .../config when the model metadata has none
    (Triton); the server gives the same parameters there, in Triton's shape."""
    from tests.daemon.serve_process import get  # noqa: PLC0415

    status, config = get(f"{server.url}/v2/models/demo/config")
    assert status == 200 and config["platform"] == "onnxruntime_onnx"
    local = Predictor(demo_model, backend="onnxruntime")
    assert config_parameters(config) == local.backend.metadata_props
    assert config_parameters({"parameters": {"a": {"int64_value": 1}}}) == {}

"""``d2stream serve``: the Open Inference Protocol routes of a real server on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from daemon.inference.backends import create_backend
from daemon.inference.oip_codec import decode, encode
from tests.daemon.daemon_helpers import subprocess_env
from tests.daemon.serve_process import ServeProcess, get, request

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def server(demo_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(demo_model, tmp_path_factory.mktemp("serve"))
    yield proc
    proc.kill()


def _net_input() -> np.ndarray:
    return RNG.uniform(0, 255, (1, 3, 64, 96)).astype(np.float32)


def test_health_server_and_model_metadata(server: ServeProcess, demo_model: Path) -> None:
    assert get(f"{server.url}/v2/health/live") == (200, {"live": True})
    assert get(f"{server.url}/v2/models/demo/ready")[1]["ready"] is True
    status, meta = get(f"{server.url}/v2")
    assert status == 200 and "binary_tensor_data" in meta["extensions"]
    status, model = get(f"{server.url}/v2/models/demo/versions/1")
    local = create_backend("onnxruntime", demo_model)
    assert status == 200 and model["parameters"] == local.metadata_props
    assert [o["name"] for o in model["outputs"]] == local.output_names
    assert model["inputs"][0]["name"] == "image"


@pytest.mark.parametrize("binary", [False, True])
def test_infer_equals_local_onnxruntime(server: ServeProcess, demo_model: Path,
                                        binary: bool) -> None:
    x = _net_input()
    outputs = [{"name": "boxes", "parameters": {"binary_data": binary}},
               {"name": "scores", "parameters": {"binary_data": binary}}]
    body, length = encode({"image": x}, "inputs", binary, {"outputs": outputs})
    headers = {"Inference-Header-Content-Length": str(length)} if binary else {}
    status, answer = request("POST", f"{server.url}/v2/models/demo/infer", body, headers)
    assert status == 200
    if binary:
        _, got = decode(answer[0], answer[1], "outputs", "test")
    else:
        _, got = decode(json.dumps(answer).encode(), None, "outputs", "test")
    expected = create_backend("onnxruntime", demo_model).run({"image": x})
    assert sorted(got) == ["boxes", "scores"]
    for name in got:
        np.testing.assert_array_equal(got[name], expected[name])


def test_bad_requests_get_one_line_errors(server: ServeProcess) -> None:
    status, answer = get(f"{server.url}/v2/models/other")
    assert status == 404 and "unknown model 'other'" in answer["error"]
    bad = encode({"image": np.zeros((1, 2, 8, 8), np.float32)}, "inputs", False)[0]
    status, answer = request("POST", f"{server.url}/v2/models/demo/infer", bad)
    assert status == 400 and "input 'image' must be FP32 [1, 3, H, W]" in answer["error"]
    status, answer = request("POST", f"{server.url}/v2/models/demo/infer", b"{not json")
    assert status == 400 and "not valid JSON" in answer["error"]


def test_token_is_required_when_set(demo_model: Path, tmp_path: Path) -> None:
    proc = ServeProcess(demo_model, tmp_path, token="s3cret")
    try:
        assert get(f"{proc.url}/v2/health/live")[0] == 401
        assert get(f"{proc.url}/v2", {"Authorization": "Bearer wrong"})[0] == 401
        assert get(f"{proc.url}/v2", {"Authorization": "Bearer s3cret"})[0] == 200
    finally:
        proc.kill()


def test_exposed_without_token_and_missing_model_are_one_line_errors(demo_model: Path,
                                                                     tmp_path: Path) -> None:
    exposed = _d2stream("serve", str(demo_model), "--host", "0.0.0.0", "--port", "0")
    assert exposed.returncode != 0
    assert "--host 0.0.0.0 exposes the server: set --token" in exposed.stderr
    missing = _d2stream("serve", str(tmp_path / "none.onnx"), "--port", "0")
    assert missing.returncode != 0 and "model file not found" in missing.stderr
    assert "Traceback" not in exposed.stderr + missing.stderr


def _d2stream(*args: str) -> subprocess.CompletedProcess:
    env = subprocess_env()
    env.pop("D2STREAM_SERVE_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "daemon.cli.main", *args], capture_output=True,
                          text=True, timeout=120, env=env)

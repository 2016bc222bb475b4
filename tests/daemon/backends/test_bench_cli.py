"""``d2stream bench``: latency percentiles, peak memory, CPU peak and the FLOP floor lines."""

from __future__ import annotations

import re

import pytest

from daemon.cli.main import main


@pytest.mark.parametrize("backend", ["auto", "onnxruntime", "openvino"])
def test_bench_prints_latency_memory_and_efficiency(backend, exported, capsys):
    from daemon.inference.backends import auto

    if backend != "auto" and backend not in auto.available_backends():
        pytest.skip(f"{backend} not installed")
    model = exported("faster_rcnn_R_50_FPN")
    code = main(["bench", str(model), "--size", "240x320", "--threads", "1", "--runs", "2",
                 "--warmup", "1", "--backend", backend])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"^graph\s+p50\s+[\d.]+ ms\s+p90\s+[\d.]+ ms", out, re.M)
    assert re.search(r"^peak RSS\s+\d+ MB", out, re.M)
    if backend == "auto":  # the engine it picked, named
        assert re.search(rf"backend ({'|'.join(auto.candidates())}) \(auto\)", out), out
    else:
        assert f"backend {backend}\n" in out
    assert "input      256x320" not in out
    assert re.search(r"^input\s+240x320", out, re.M)
    assert re.search(r"^cpu peak .* = [\d.]+ GFLOP/s fp32", out, re.M)
    assert re.search(r"^matmul\s+[\d.]+ GFLOP/s", out, re.M)
    flops = re.search(r"^flops\s+([\d.]+) GFLOP -> floor", out, re.M)
    assert flops and float(flops.group(1)) > 0.1


def test_bench_rejects_bad_size(exported, capsys):
    assert main(["bench", str(exported("faster_rcnn_R_50_FPN")), "--size", "big"]) == 2


def test_predict_with_openvino_backend(exported, fixtures, tmp_path):
    import json

    from daemon.inference.backends import available_backends

    if "openvino" not in available_backends():
        pytest.skip("openvino not installed")
    image = fixtures / "mask_rcnn_R_50_FPN_demo" / "image_1.png"
    model = str(exported("mask_rcnn_R_50_FPN_demo"))
    runs = {}
    for backend in ("onnxruntime", "openvino"):
        out = tmp_path / f"{backend}.json"
        assert main(["predict", model, str(image), "--json", str(out), "--backend", backend]) == 0
        runs[backend] = json.loads(out.read_text())["images"][0]["instances"]
    assert len(runs["openvino"]) == len(runs["onnxruntime"]) > 0
    for a, b in zip(runs["onnxruntime"], runs["openvino"]):
        assert a["category_id"] == b["category_id"] and abs(a["score"] - b["score"]) < 1e-4

"""Every local backend loads a model whose weights are ONNX external data (``NAME.onnx.data``,
how models over 2 GiB are written), and the caches keyed on the model see the side file."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

from d2common.onnx_files import data_file
from daemon.inference.backends import BackendOptions, available_backends, create_backend
from daemon.inference.backends.auto import file_sha256
from daemon.inference.backends.ort_backend import cache_file
from export_tools.onnx_io import save_model

MODEL = "faster_rcnn_R_50_FPN"


@pytest.fixture(scope="module")
def external(exported, tmp_path_factory):
    path = tmp_path_factory.mktemp("ext") / "frcnn.onnx"
    return save_model(onnx.load(str(exported(MODEL))), path, external_data=True)


def _input(fixtures):
    return np.load(fixtures / MODEL / "expected_0.npz")["input"][None]


@pytest.mark.parametrize("backend", [b for b in ("onnxruntime", "openvino")
                                     if b in available_backends()])
def test_backend_runs_an_external_data_model_like_the_single_file(backend, external, exported,
                                                                  fixtures):
    options = BackendOptions(num_threads=1)
    ours = create_backend(backend, external, options).run({"image": _input(fixtures)})
    ref = create_backend(backend, exported(MODEL), options).run({"image": _input(fixtures)})
    assert len(ours["scores"]) > 0
    for key in ref:
        np.testing.assert_array_equal(ours[key], ref[key])


def test_ort_optimised_cache_keeps_external_weights_beside_it(external, fixtures, tmp_path):
    options = BackendOptions(num_threads=1, optimized_cache=str(tmp_path))
    first = create_backend("onnxruntime", external, options)
    cached = cache_file(external, tmp_path)
    assert cached.is_file() and data_file(cached).is_file()
    assert cached.stat().st_size < data_file(cached).stat().st_size
    stamp = cached.stat().st_mtime_ns
    second = create_backend("onnxruntime", external, options)
    assert cached.stat().st_mtime_ns == stamp  # read back, not rewritten
    a, b = first.run({"image": _input(fixtures)}), second.run({"image": _input(fixtures)})
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5)
    assert second.metadata_props == first.metadata_props


def test_new_weights_in_the_side_file_change_the_cache_keys(external, tmp_path):
    digest, cached = file_sha256(external), cache_file(external, tmp_path)
    side = data_file(external)
    st = side.stat()
    os.utime(side, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # as a re-export would
    try:
        assert file_sha256(external) != digest
        assert cache_file(external, tmp_path) != cached
    finally:
        os.utime(side, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_cache_whose_side_file_is_gone_is_rebuilt_from_the_model(external, fixtures, tmp_path):
    options = BackendOptions(num_threads=1, optimized_cache=str(tmp_path))
    create_backend("onnxruntime", external, options)
    cached = cache_file(external, tmp_path)
    data_file(cached).unlink()  # e.g. a cleaned-up cache folder
    backend = create_backend("onnxruntime", external, options)
    assert len(backend.run({"image": _input(fixtures)})["scores"]) > 0
    assert not cached.exists()  # dropped; the next start writes it again
    create_backend("onnxruntime", external, options)
    assert cached.is_file() and data_file(cached).is_file()

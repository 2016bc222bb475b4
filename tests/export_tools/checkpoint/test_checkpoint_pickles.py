"""Model-zoo and Caffe2/Detectron1 pickles (.pkl) written by the real pickler or by hand."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from export_tools.checkpoint import load_checkpoint
from tests.export_tools.checkpoint.checkpoint_writers import Build, Call, Global, Py2Str, dumps

RNG = np.random.default_rng(11)


def _arrays() -> dict[str, np.ndarray]:
    return {
        "conv.weight": RNG.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "fortran": np.asfortranarray(RNG.standard_normal((3, 5))),
        "big_endian": np.arange(6, dtype=">f4").reshape(2, 3),
        "counts": np.array([3, -1], dtype=np.int64),
        "half": np.array([0.5, 2.0], dtype=np.float16),
        "flags": np.array([True, False]),
        "scalar": np.array(7.0, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def _check_equal(state: dict[str, np.ndarray], arrays: dict[str, np.ndarray]) -> None:
    assert list(state) == list(arrays)
    for name, array in arrays.items():
        loaded = state[name]
        assert loaded.flags.c_contiguous and loaded.flags.writeable, name
        assert loaded.dtype == array.dtype.newbyteorder("="), name
        assert loaded.dtype.isnative and loaded.shape == array.shape, name
        np.testing.assert_array_equal(loaded, array, err_msg=name)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_model_zoo_pickle(tmp_path: Path, protocol: int) -> None:
    arrays = _arrays()
    obj = {"model": arrays, "__author__": "Detectron2 Model Zoo", "matching_heuristics": True}
    data = pickle.dumps(obj, protocol=protocol)
    if protocol == 5:
        assert b"_frombuffer" in data  # numpy's protocol-5 form
    path = tmp_path / "model.pkl"
    path.write_bytes(data)

    state, info = load_checkpoint(path)

    _check_equal(state, arrays)
    assert info.format == "pickle" and info.matching_heuristics
    assert info.author == "Detectron2 Model Zoo"
    assert info.extra_keys == ("__author__", "matching_heuristics")
    assert info.num_tensors == len(arrays)
    assert info.num_bytes == sum(a.nbytes for a in arrays.values())


def test_bare_dict_is_read_as_caffe2_like_detectron2_does(tmp_path: Path) -> None:
    arrays = {"conv1_w": np.ones((2, 3, 1, 1), np.float32), "fc_b": np.zeros(3, np.float32)}
    blobs = {**arrays, "conv1_w_momentum": np.ones((2, 3, 1, 1), np.float32)}
    path = tmp_path / "R-50.pkl"
    path.write_bytes(pickle.dumps(blobs, protocol=2))
    state, info = load_checkpoint(path)
    _check_equal(state, arrays)
    assert info.matching_heuristics and info.author == "Caffe2" and info.extra_keys == ()


def test_detectron1_blobs_form(tmp_path: Path) -> None:
    arrays = {"res2_0_branch1_w": RNG.standard_normal((8, 4, 1, 1)).astype(np.float32)}
    path = tmp_path / "model_final.pkl"
    path.write_bytes(pickle.dumps({"blobs": arrays, "cfg": "MODEL: {}"}, protocol=2))
    state, info = load_checkpoint(path)
    _check_equal(state, arrays)
    assert info.extra_keys == ("cfg",) and info.matching_heuristics


def test_numpy_scalars_in_extra_keys(tmp_path: Path) -> None:
    arrays = {"w": np.ones(3, np.float32)}
    obj = {"model": arrays, "__author__": "me", "iteration": np.int64(90000), "lr": np.float32(2)}
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    state, info = load_checkpoint(path)
    _check_equal(state, arrays)
    assert info.extra_keys == ("__author__", "iteration", "lr")


def test_python2_style_pickle_with_latin1_array_bytes(tmp_path: Path) -> None:
    values = np.array([1.0, -2.0, 255.0], dtype="<f4")  # bytes above 0x7f need latin-1
    dtype = Build(
        Call(Global("numpy", "dtype"), ("f4", 0, 1)), (3, "<", None, None, None, -1, -1, 0)
    )
    array = Build(
        Call(
            Global("numpy.core.multiarray", "_reconstruct"),
            (Global("numpy", "ndarray"), (0,), Py2Str(b"b")),
        ),
        (1, (3,), dtype, False, Py2Str(values.tobytes())),
    )
    obj = {"model": {"w": array}, "__author__": "Detectron"}
    path = tmp_path / "py2.pkl"
    path.write_bytes(dumps(obj))
    state, _ = load_checkpoint(path)
    np.testing.assert_array_equal(state["w"], values)


def test_content_decides_the_format_not_the_extension(tmp_path: Path) -> None:
    arrays = {"w": np.arange(3, dtype=np.float32)}
    path = tmp_path / "weights.pth"
    path.write_bytes(pickle.dumps({"model": arrays, "__author__": "x"}, protocol=4))
    state, info = load_checkpoint(path)
    assert info.format == "pickle"
    _check_equal(state, arrays)

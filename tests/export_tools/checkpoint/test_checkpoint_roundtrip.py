"""Round trips through hand-built torch zip archives: views, dtypes, layouts, top-level forms."""

from __future__ import annotations

import logging
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from export_tools.checkpoint import load_checkpoint
from tests.export_tools.checkpoint.checkpoint_writers import (
    Call,
    Global,
    array_tensor,
    corrupt_entry_data,
    dumps,
    storage_id,
    tensor,
    write_state_dict_zip,
    write_torch_zip,
)

RNG = np.random.default_rng(7)


def _load_one(path: Path, name: str = "t") -> np.ndarray:
    state, _ = load_checkpoint(path)
    array = state[name]
    assert array.flags.c_contiguous and array.flags.writeable
    return array


def _single_tensor_zip(tmp_path: Path, tensor_call: Call, data: bytes, **kwargs) -> Path:
    obj = {"model": OrderedDict(t=tensor_call)}
    return write_torch_zip(tmp_path / "ckpt.pth", dumps(obj), {"0": data}, **kwargs)


def test_trainer_checkpoint_reports_extra_keys(tmp_path: Path) -> None:
    arrays = {"conv.weight": RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)}
    optimizer = {"state": {0: {"momentum_buffer": 1.5}}, "param_groups": [{"lr": 0.02}]}
    path = write_state_dict_zip(
        tmp_path / "c.pth", arrays, optimizer=optimizer, scheduler={"last_epoch": 9}, iteration=9
    )
    state, info = load_checkpoint(path)
    assert info.extra_keys == ("optimizer", "scheduler", "iteration")
    assert list(state) == ["conv.weight"]
    np.testing.assert_array_equal(state["conv.weight"], arrays["conv.weight"])


def test_bare_state_dict(tmp_path: Path) -> None:
    arrays = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "a.bias": np.ones(2)}
    state, info = load_checkpoint(write_state_dict_zip(tmp_path / "bare.pth", arrays))
    assert info.extra_keys == () and info.format == "torch-zip"
    assert info.num_tensors == 2 and info.num_bytes == 6 * 4 + 2 * 8
    for name, array in arrays.items():
        assert state[name].dtype == array.dtype
        np.testing.assert_array_equal(state[name], array)


def test_optimizer_tensors_are_not_read(tmp_path: Path) -> None:
    weight = RNG.standard_normal((5, 2)).astype(np.float32)
    weight_tensor, weight_bytes = array_tensor("0", weight)
    momentum_tensor, momentum_bytes = array_tensor("1", np.zeros((5, 2), np.float32))
    obj = {
        "model": OrderedDict(w=weight_tensor),
        "optimizer": {"state": {0: {"momentum_buffer": momentum_tensor}}},
    }
    path = write_torch_zip(tmp_path / "c.pth", dumps(obj), {"0": weight_bytes, "1": momentum_bytes})
    corrupt_entry_data(path, "archive/data/1")
    np.testing.assert_array_equal(_load_one(path, "w"), weight)


def test_transposed_strides(tmp_path: Path) -> None:
    base = RNG.standard_normal((3, 4)).astype(np.float32)
    call = tensor(storage_id("0", "FloatStorage", 12), (4, 3), stride=(1, 4))
    np.testing.assert_array_equal(
        _load_one(_single_tensor_zip(tmp_path, call, base.tobytes())), base.T
    )


def test_storage_offset_and_step(tmp_path: Path) -> None:
    base = np.arange(20, dtype=np.float32)
    call = tensor(storage_id("0", "FloatStorage", 20), (2, 3), stride=(6, 2), offset=5)
    expected = base[5:].reshape(-1)[: 2 * 6].reshape(2, 6)[:, ::2]
    np.testing.assert_array_equal(
        _load_one(_single_tensor_zip(tmp_path, call, base.tobytes())), expected
    )


def test_expanded_zero_stride(tmp_path: Path) -> None:
    row = np.array([1, 2, 3, 4], dtype=np.int64)
    call = tensor(storage_id("0", "LongStorage", 4), (3, 4), stride=(0, 1))
    loaded = _load_one(_single_tensor_zip(tmp_path, call, row.tobytes()))
    np.testing.assert_array_equal(loaded, np.broadcast_to(row, (3, 4)))


def test_shared_storage_views(tmp_path: Path) -> None:
    base = RNG.standard_normal(24).astype(np.float32)
    pid = storage_id("0", "FloatStorage", 24)
    model = OrderedDict(
        full=tensor(pid, (4, 6)),
        tail=tensor(pid, (2, 6), offset=12),
        column=tensor(pid, (4,), stride=(6,), offset=1),
    )
    path = write_torch_zip(tmp_path / "c.pth", dumps({"model": model}), {"0": base.tobytes()})
    state, info = load_checkpoint(path)
    np.testing.assert_array_equal(state["full"], base.reshape(4, 6))
    np.testing.assert_array_equal(state["tail"], base[12:].reshape(2, 6))
    np.testing.assert_array_equal(state["column"], base.reshape(4, 6)[:, 1])
    state["full"][0, 0] = 123.0  # copies: views of one storage do not alias
    assert state["tail"][0, 0] == base[12] and info.num_tensors == 3


@pytest.mark.parametrize(
    "array",
    [
        np.array([[0.5, -1.25], [65504.0, 1e-3]], dtype=np.float16),
        np.array([1, -(2**40), 2**62], dtype=np.int64),
        np.array([-7, 2**31 - 1], dtype=np.int32),
        np.array([0, 255, 17], dtype=np.uint8),
        np.array([-128, 5], dtype=np.int8),
        np.array([np.pi, -1e300], dtype=np.float64),
        np.array([True, False, True]),
    ],
    ids=lambda a: a.dtype.name,
)
def test_dtypes_round_trip(tmp_path: Path, array: np.ndarray) -> None:
    call, data = array_tensor("0", array)
    loaded = _load_one(_single_tensor_zip(tmp_path, call, data))
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)


def test_bool_storage_bytes_other_than_one_are_true(tmp_path: Path) -> None:
    call = tensor(storage_id("0", "BoolStorage", 3), (3,))
    loaded = _load_one(_single_tensor_zip(tmp_path, call, bytes([0, 1, 7])))
    assert loaded.dtype == np.bool_ and loaded.tolist() == [False, True, True]


def test_bfloat16_becomes_float32(tmp_path: Path) -> None:
    values = np.array([1.5, -2.0, 3.140625, 0.0, -0.0078125, 1e30], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2")  # these values are exact in bfloat16
    call = tensor(storage_id("0", "BFloat16Storage", values.size), (2, 3))
    loaded = _load_one(_single_tensor_zip(tmp_path, call, bf16.tobytes()))
    expected = (bf16.astype(np.uint32) << 16).view(np.float32).reshape(2, 3)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, expected)
    np.testing.assert_allclose(loaded.ravel()[:5], values[:5])


@pytest.mark.parametrize("storage_type", ["BFloat16Storage", "BoolStorage", "HalfStorage"])
def test_transposed_views_of_converted_dtypes(tmp_path: Path, storage_type: str) -> None:
    raw = np.array([[0, 1, 1], [1, 0, 1]], dtype=np.uint8)  # (2, 3), also as 16-bit below
    if storage_type == "BoolStorage":
        data, expected = raw.tobytes(), raw.T.astype(bool)
    else:
        words = (raw.astype(np.uint16) * 0x3F80).astype("<u2")  # 1.0 in bfloat16
        data = words.tobytes()
        expected = (words.astype(np.uint32) << 16).view(np.float32).T
        if storage_type == "HalfStorage":
            expected = words.view(np.float16).T
    call = tensor(storage_id("0", storage_type, 6), (3, 2), stride=(1, 3))
    loaded = _load_one(_single_tensor_zip(tmp_path, call, data))
    assert loaded.dtype == expected.dtype
    np.testing.assert_array_equal(loaded, expected)


def test_untyped_storage_with_v3_dtype(tmp_path: Path) -> None:
    values = np.array([1.0, 2.5, -3.0, 4.0], dtype=np.float16)
    pid = storage_id("0", "UntypedStorage", values.nbytes, module="torch.storage")
    hooks = Call(Global("collections", "OrderedDict"), ())
    call = Call(
        Global("torch._utils", "_rebuild_tensor_v3"),
        (pid, 1, (3,), (1,), False, hooks, Global("torch", "float16")),
    )
    loaded = _load_one(_single_tensor_zip(tmp_path, call, values.tobytes()))
    assert loaded.dtype == np.float16
    np.testing.assert_array_equal(loaded, values[1:])


def test_parameter_wrapper_and_zero_dim_and_empty(tmp_path: Path) -> None:
    hooks = Call(Global("collections", "OrderedDict"), ())
    scalar = tensor(storage_id("0", "FloatStorage", 1), ())
    model = OrderedDict(
        p=Call(Global("torch._utils", "_rebuild_parameter"), (scalar, True, hooks)),
        empty=tensor(storage_id("1", "FloatStorage", 0), (0, 3)),
    )
    storages = {"0": np.float32(2.5).tobytes(), "1": b""}
    path = write_torch_zip(tmp_path / "c.pth", dumps({"model": model}), storages)
    state, _ = load_checkpoint(path)
    assert state["p"].shape == () and state["p"] == np.float32(2.5)
    assert state["empty"].shape == (0, 3) and state["empty"].dtype == np.float32


def test_big_endian_archive(tmp_path: Path) -> None:
    values = np.array([[1.0, -2.0], [3.5, 1e-7]], dtype=np.float32)
    call = tensor(storage_id("0", "FloatStorage", 4), (2, 2))
    path = _single_tensor_zip(tmp_path, call, values.astype(">f4").tobytes(), byteorder="big")
    loaded = _load_one(path)
    assert loaded.dtype == np.dtype("=f4")
    np.testing.assert_array_equal(loaded, values)


def test_old_layout_other_prefix_no_byteorder_and_deflate(tmp_path: Path) -> None:
    values = RNG.standard_normal((3, 3)).astype(np.float32)
    call, data = array_tensor("0", values)
    path = _single_tensor_zip(
        tmp_path, call, data, prefix="model_final", byteorder=None, compression=zipfile.ZIP_DEFLATED
    )
    np.testing.assert_array_equal(_load_one(path), values)


def test_numpy_arrays_inside_a_torch_pickle(tmp_path: Path) -> None:
    import pickle

    arrays = {"w": np.arange(4, dtype=np.float32), "b": np.array([1, 2], dtype=np.int64)}
    data_pkl = pickle.dumps({"model": arrays, "iteration": 3}, protocol=2)  # uses _codecs.encode
    path = write_torch_zip(tmp_path / "c.pth", data_pkl, {})
    state, info = load_checkpoint(path)
    assert info.extra_keys == ("iteration",)
    for name, array in arrays.items():
        np.testing.assert_array_equal(state[name], array)


def test_dataparallel_prefix_is_stripped_only_when_on_every_key(tmp_path: Path) -> None:
    one = np.ones(2, np.float32)
    all_prefixed = {"module.a.weight": one, "module.b.bias": one}
    state, _ = load_checkpoint(write_state_dict_zip(tmp_path / "dp.pth", all_prefixed, iteration=1))
    assert list(state) == ["a.weight", "b.bias"]
    mixed = {"module.a.weight": one, "b.bias": one}
    state, _ = load_checkpoint(write_state_dict_zip(tmp_path / "mixed.pth", mixed))
    assert list(state) == ["module.a.weight", "b.bias"]


def test_matching_heuristics_flag_and_pathlike(tmp_path: Path) -> None:
    arrays = {"w": np.zeros(1, np.float32)}
    path = write_state_dict_zip(tmp_path / "c.pth", arrays, matching_heuristics=True)
    _, info = load_checkpoint(path)
    assert info.matching_heuristics and info.extra_keys == ("matching_heuristics",)
    _, info = load_checkpoint(str(path))
    assert info.path == str(path)


def test_summary_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    arrays = {"w": np.zeros((1000, 500), np.float32)}
    path = write_state_dict_zip(tmp_path / "c.pth", arrays, iteration=1)
    with caplog.at_level(logging.INFO, logger="export_tools.checkpoint"):
        load_checkpoint(path)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("export_tools")]
    assert messages == [
        f"Loaded checkpoint {path} (torch-zip): 1 tensors, 2.0 MB, extra keys: iteration"
    ]

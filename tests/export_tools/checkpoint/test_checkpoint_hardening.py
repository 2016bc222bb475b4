"""Checkpoint pickles that attack the unpickler's memory, stack and shape arithmetic (issue 19)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from export_tools.checkpoint import CheckpointError, load_checkpoint
from tests.export_tools.checkpoint.checkpoint_writers import (
    Build,
    Call,
    Global,
    Raw,
    array_tensor,
    dumps,
    storage_id,
    tensor,
    write_state_dict_zip,
    write_torch_zip,
)

MEMO_BOMB = b"\x80\x02}r\x00\x00\x00\x20."  # EMPTY_DICT, LONG_BINPUT 2**29, STOP
MAX_BYTES = 1 << 20

# Runs in a child: peak memory is per process, and a crash must not take pytest down. The address
# space is capped so that the unfixed unpickler fails with MemoryError instead of eating the host.
_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    limit = 3 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from export_tools.checkpoint import CheckpointError, load_checkpoint
    load_checkpoint(sys.argv[1], max_bytes=int(sys.argv[3]))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        load_checkpoint(sys.argv[2], max_bytes=int(sys.argv[3]))
        message = "loaded"
    except CheckpointError as exc:
        message = str(exc)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"message": message, "grew_kb": peak - base}))
    """
)


def _load_in_child(tmp_path: Path, path: Path) -> dict[str, Any]:
    good = write_state_dict_zip(tmp_path / "good.pth", {"w": np.ones(4, np.float32)})
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(good), str(path), str(MAX_BYTES)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_memo_bomb_in_a_pickle_stays_within_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "bomb.pkl"
    path.write_bytes(MEMO_BOMB)
    result = _load_in_child(tmp_path, path)
    assert "memo entry 536870912" in result["message"]
    assert str(path) in result["message"]
    # Peak memory grows by at most a small multiple of max_bytes (measured: nothing at all).
    assert result["grew_kb"] * 1024 < 4 * MAX_BYTES


def test_memo_bomb_inside_a_torch_zip(tmp_path: Path) -> None:
    bomb = b"\x80\x02}r\x00\x00\x00\x10."  # LONG_BINPUT 2**28
    path = write_torch_zip(tmp_path / "bomb.pth", bomb, {})
    result = _load_in_child(tmp_path, path)
    assert "memo entry 268435456" in result["message"]
    assert result["grew_kb"] * 1024 < 4 * MAX_BYTES


def test_memo_indices_written_by_pickle_itself_are_accepted(tmp_path: Path) -> None:
    import pickle

    shared = np.arange(6, dtype=np.float32)
    top = {"model": {"a": shared, "b": shared, "c": np.zeros((2, 3))}, "meta": [("x",) * 3] * 4}
    for protocol in (2, 4, 5):
        path = tmp_path / f"memo{protocol}.pkl"
        path.write_bytes(pickle.dumps(top, protocol=protocol))
        state, _ = load_checkpoint(path)
        np.testing.assert_array_equal(state["b"], shared)


def test_deeply_nested_tuple_key_is_refused_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.pkl"
    # {((((0,),),)...): 1} with 300 000 levels: TUPLE1 is one byte per level.
    path.write_bytes(b"\x80\x02}K\x00" + b"\x85" * 300_000 + b"K\x01s.")
    result = _load_in_child(tmp_path, path)  # a segmentation fault fails the exit-code assert
    assert "nests containers more than 200 levels deep" in result["message"]


def test_deeply_nested_lists_are_refused(tmp_path: Path) -> None:
    # [[[...]]] 300 levels deep, written with MARK ... APPENDS.
    opcodes = b"]"
    for _ in range(300):
        opcodes = b"]" + b"(" + opcodes + b"e"
    path = tmp_path / "lists.pkl"
    path.write_bytes(dumps({"model": {}, "deep": Raw(opcodes)}))
    with pytest.raises(CheckpointError, match="levels deep"):
        load_checkpoint(path)


def test_ordinary_nesting_still_loads(tmp_path: Path) -> None:
    nested: Any = {"leaf": 1}
    for level in range(60):
        nested = {"next": nested, "list": [level, (level,)]} if level % 2 else [nested]
    path = write_state_dict_zip(tmp_path / "ok.pth", {"w": np.ones(2, np.float32)}, extra=nested)
    state, info = load_checkpoint(path)
    assert list(state) == ["w"] and info.extra_keys == ("extra",)


def _complex_array(shape: tuple[int, ...]) -> Build:
    dtype = Build(Call(Global("numpy", "dtype"), ("c16", False, True)), (3, "<") + (None,) * 3 + (
        -1,
        -1,
        0,
    ))
    reconstruct = Global("numpy._core.multiarray", "_reconstruct")
    empty = Call(reconstruct, (Global("numpy", "ndarray"), (0,), b"b"))
    return Build(empty, (1, shape, dtype, False, b""))


def test_huge_empty_array_shape_in_a_pkl_names_the_array(tmp_path: Path) -> None:
    path = tmp_path / "huge.pkl"
    path.write_bytes(dumps({"model": {"backbone.w": _complex_array((0, 2**61, 2**61))}}))
    with pytest.raises(CheckpointError, match=r"array 'backbone\.w': .*too big to address"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("size", "stride"),
    [((0, 2**61, 2**61), (1, 1, 1)), ((1, 2), (2**61, 1))],
    ids=["empty-huge-shape", "huge-stride"],
)
def test_huge_tensor_shape_or_stride_names_the_tensor(tmp_path: Path, size, stride) -> None:
    pid = storage_id("0", "ComplexDoubleStorage", 4)
    model = OrderedDict([("roi.w", tensor(pid, size, stride))])
    path = write_torch_zip(tmp_path / "huge.pth", dumps({"model": model}), {"0": bytes(64)})
    with pytest.raises(CheckpointError, match=r"tensor 'roi\.w': .*too big to address"):
        load_checkpoint(path)


def test_build_on_an_ordered_dict_instance_is_refused(tmp_path: Path) -> None:
    weight, data = array_tensor("0", np.ones(3, np.float32))
    model = Build(OrderedDict(w=weight), {"items": Call(Global("builtins", "set"), ())})
    path = write_torch_zip(tmp_path / "od.pth", dumps({"model": model}), {"0": data})
    with pytest.raises(CheckpointError, match="BUILD on a dict"):
        load_checkpoint(path)
    slots = Build(OrderedDict(w=weight), (None, {"items": 5}))
    path = write_torch_zip(tmp_path / "od2.pth", dumps({"model": slots}), {"0": data})
    with pytest.raises(CheckpointError, match="BUILD on a dict"):
        load_checkpoint(path)

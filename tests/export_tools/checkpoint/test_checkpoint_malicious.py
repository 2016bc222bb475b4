"""Malicious checkpoints: code-execution payloads and abuse of allowed globals are refused."""

from __future__ import annotations

import builtins
import importlib
import os
import pickle
import subprocess
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
    PersId,
    Raw,
    array_tensor,
    dumps,
    storage_id,
    write_torch_zip,
)


class _Payload:
    """Pickles as ``func(*args)``: what a malicious checkpoint does."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, tuple[_Payload, str]]:
    """name -> (payload that would create ``marker``, qualified name the pickle uses)."""
    write = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "os.system": (_Payload(os.system, f"touch {marker}"), f"{os.system.__module__}.system"),
        "eval": (_Payload(builtins.eval, write), "builtins.eval"),
        "exec": (_Payload(builtins.exec, write), "builtins.exec"),
        "subprocess.Popen": (
            _Payload(subprocess.Popen, ["touch", str(marker)]),
            "subprocess.Popen",
        ),
        "import_module": (_Payload(importlib.import_module, "os"), "importlib.import_module"),
        "__import__": (_Payload(builtins.__import__, "os"), "builtins.__import__"),
    }


PAYLOAD_NAMES = list(_payloads(Path("x")))


def _assert_refused(path: Path, qualname: str, marker: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert f"refuses to import {qualname}" in message
    assert str(path) in message
    assert not marker.exists()


@pytest.mark.parametrize("payload_name", ["os.system", "exec"])
def test_control_the_payloads_do_run_under_plain_pickle(tmp_path: Path, payload_name: str) -> None:
    marker = tmp_path / "pwned"
    payload, _ = _payloads(marker)[payload_name]
    pickle.loads(pickle.dumps(payload, protocol=2))  # the unsafe way, on purpose
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("payload_name", PAYLOAD_NAMES)
def test_payload_in_pkl_is_refused(tmp_path: Path, payload_name: str, protocol: int) -> None:
    marker = tmp_path / "pwned"
    payload, qualname = _payloads(marker)[payload_name]
    nested = {"model": {"w": np.ones(2, np.float32), "evil": payload}, "__author__": "x"}
    for index, obj in enumerate([payload, nested]):
        path = tmp_path / f"evil{index}.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=protocol))
        _assert_refused(path, qualname, marker)


@pytest.mark.parametrize("payload_name", PAYLOAD_NAMES)
def test_payload_in_torch_zip_is_refused(tmp_path: Path, payload_name: str) -> None:
    marker = tmp_path / "pwned"
    payload, qualname = _payloads(marker)[payload_name]
    # Real pickler output, as torch.save would write it (protocol 2), payload next to the model.
    real = pickle.dumps({"model": {"w": np.ones(2)}, "optimizer": payload}, protocol=2)
    _assert_refused(write_torch_zip(tmp_path / "real.pth", real, {}), qualname, marker)
    # Hand-written pickle with a real tensor before the payload.
    weight, data = array_tensor("0", np.ones(3, np.float32))
    module, _, name = qualname.rpartition(".")
    evil = Call(Global(module, name), payload.args)
    obj = {"model": OrderedDict(w=weight), "optimizer": evil}
    _assert_refused(
        write_torch_zip(tmp_path / "hand.pth", dumps(obj), {"0": data}), qualname, marker
    )


def test_os_system_by_its_usual_name(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(dumps(Call(Global("os", "system"), (f"touch {marker}",))))
    _assert_refused(path, "os.system", marker)


def _refusal(tmp_path: Path, obj: Any, as_zip: bool = False) -> str:
    data = dumps(obj)
    if as_zip:
        _, storage = array_tensor("0", np.ones(4, np.float32))
        path = write_torch_zip(tmp_path / "evil.pth", data, {"0": storage})
    else:
        path = tmp_path / "evil.pkl"
        path.write_bytes(data)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)
    return str(err.value)


def test_build_on_an_allowed_global_is_refused(tmp_path: Path) -> None:
    ordered_dict = Global("collections", "OrderedDict")
    message = _refusal(tmp_path, Build(ordered_dict, {"impl": Global("numpy", "dtype")}))
    assert "tries to modify collections.OrderedDict" in message
    rebuild = Global("torch._utils", "_rebuild_tensor_v2")
    message = _refusal(tmp_path, Build(rebuild, (None, {"impl": ordered_dict})))
    assert "tries to modify torch._utils._rebuild_tensor_v2" in message


@pytest.mark.parametrize(
    ("opcodes", "name"),
    [
        (b"ccollections\nOrderedDict\n)\x81", "NEWOBJ"),
        (b"\x82\x01", "EXT1"),
        (b"(ios\nsystem\nX\x02\x00\x00\x00id", "INST"),
    ],
)
def test_instance_and_extension_opcodes_are_refused(tmp_path: Path, opcodes: bytes, name: str):
    assert f"pickle opcode {name}" in _refusal(tmp_path, Raw(opcodes))


def test_calling_a_non_callable_is_refused(tmp_path: Path) -> None:
    storage = storage_id("0", "FloatStorage", 4)
    message = _refusal(tmp_path, {"model": Call(storage, ())}, as_zip=True)
    assert "corrupt pickle: TypeError" in message


def test_storage_types_and_dtypes_cannot_be_called(tmp_path: Path) -> None:
    message = _refusal(tmp_path, Call(Global("torch", "FloatStorage"), (10**9,)))
    assert "calls torch.FloatStorage, which may not be called" in message
    message = _refusal(tmp_path, Call(Global("torch", "float32"), ()))
    assert "calls torch.float32, which may not be called" in message


def test_reconstruct_only_builds_ndarrays(tmp_path: Path) -> None:
    reconstruct = Global("numpy._core.multiarray", "_reconstruct")
    obj = Call(reconstruct, (Global("collections", "OrderedDict"), (0,), b"b"))
    assert "may only build numpy.ndarray" in _refusal(tmp_path, obj)


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": np.array([1, "a"], dtype=object)}}))
    with pytest.raises(CheckpointError, match=r"numpy dtype 'O\d*' is not allowed"):
        load_checkpoint(path)


def test_persistent_ids_only_in_torch_zips(tmp_path: Path) -> None:
    message = _refusal(tmp_path, {"model": {"w": storage_id("0", "FloatStorage", 4)}})
    assert "only a torch zip checkpoint may do" in message
    odd_pid = PersId(("module", Global("torch", "FloatStorage"), "0", "cpu", 4))
    assert "unsupported persistent id kind 'module'" in _refusal(tmp_path, odd_pid, as_zip=True)


def test_other_torch_functions_are_refused(tmp_path: Path) -> None:
    message = _refusal(tmp_path, Call(Global("torch", "load"), ("/etc/passwd",)), as_zip=True)
    assert "refuses to import torch.load" in message

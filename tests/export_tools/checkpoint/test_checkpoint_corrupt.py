"""Corrupt, truncated, foreign and oversized files: a clear CheckpointError, bounded memory."""

from __future__ import annotations

import tracemalloc
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tools.checkpoint import CheckpointError, load_checkpoint
from tests.export_tools.checkpoint.checkpoint_writers import (
    Build,
    Call,
    Global,
    array_tensor,
    corrupt_entry_data,
    dumps,
    patch_central_size,
    storage_id,
    tensor,
    write_state_dict_zip,
    write_torch_zip,
)

MEMORY_BOUND = 32 * 2**20  # far below what any of the claims below would need


@contextmanager
def _peak_memory_below(limit: int) -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak traced allocation {peak} bytes"


def _refused(path: Path, pattern: str, **kwargs: int) -> str:
    with pytest.raises(CheckpointError, match=pattern) as err:
        load_checkpoint(path, **kwargs)
    assert str(path) in str(err.value)
    return str(err.value)


def _zip_with(tmp_path: Path, model: OrderedDict, storages: dict[str, bytes]) -> Path:
    return write_torch_zip(tmp_path / "c.pth", dumps({"model": model}), storages)


@pytest.mark.parametrize("suffix", ["pth", "pkl"])
def test_truncated_fixture_files(fixtures_dir: Path, tmp_path: Path, suffix: str) -> None:
    data = (fixtures_dir / "faster_rcnn_R_50_FPN" / f"model_final.{suffix}").read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        path = tmp_path / f"cut{cut}.{suffix}"
        path.write_bytes(data[:cut])
        expected = "corrupt or truncated zip" if suffix == "pth" else "corrupt or truncated pickle"
        _refused(path, expected)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    _refused(path, "the file is empty")


@pytest.mark.parametrize("head", [b"", b"\x80\x02", b"PK\x03\x04", b"}", b"("])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes(tmp_path: Path, seed: int, head: bytes) -> None:
    path = tmp_path / "random.bin"
    path.write_bytes(head + np.random.default_rng(seed).bytes(4096))
    with _peak_memory_below(MEMORY_BOUND):
        _refused(path, r"not a checkpoint|corrupt|truncated|not allowed|refuses")


def test_foreign_and_legacy_formats(tmp_path: Path) -> None:
    npz = tmp_path / "weights.npz"
    np.savez(npz, w=np.ones(3))
    _refused(npz, r"zip archive without <folder>/data.pkl, so not a torch.save checkpoint")
    legacy = tmp_path / "legacy.pth"
    magic = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
    legacy.write_bytes(magic + b".\x80\x02M\xe9\x03.")
    _refused(legacy, r"legacy torch serialization .* not supported")
    script = tmp_path / "script.pt"
    with zipfile.ZipFile(script, "w") as archive:
        archive.writestr("script/data.pkl", dumps({}))
        archive.writestr("script/constants.pkl", dumps(()))
    _refused(script, "TorchScript archive")
    text = tmp_path / "config.yaml"
    text.write_text("MODEL:\n  WEIGHTS: x\n")
    _refused(text, r"not a checkpoint: expected a torch zip \(.pth\) or a pickle \(.pkl\)")


def test_unreadable_paths(tmp_path: Path) -> None:
    _refused(tmp_path / "missing.pth", "cannot read: No such file or directory")
    _refused(tmp_path, "cannot read: Is a directory")


def test_stored_entry_claiming_a_huge_size(tmp_path: Path) -> None:
    weight, data = array_tensor("0", np.ones(16, np.float32))
    path = _zip_with(tmp_path, OrderedDict(w=weight), {"0": data})
    patch_central_size(path, "archive/data/0", 0xFFFF0000)
    with _peak_memory_below(MEMORY_BOUND):
        _refused(path, r"zip entry 'archive/data/0' is stored uncompressed but claims 4294901760")


def test_deflated_zip_bomb(tmp_path: Path) -> None:
    numel = 2**20  # 4 MiB of zeros deflate to about 4 KiB
    pid = storage_id("0", "FloatStorage", numel)
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", dumps({"model": OrderedDict(w=tensor(pid, (numel,)))}))
        archive.writestr("archive/data/0", bytes(4 * numel))
    with _peak_memory_below(MEMORY_BOUND):
        _refused(
            path,
            r"'archive/data/0' claims 4194304 bytes, more than the limit of 1000000",
            max_bytes=10**6,
        )
    patch_central_size(path, "archive/data/0", 0xFFFF0000)
    with _peak_memory_below(MEMORY_BOUND):
        _refused(path, r"'archive/data/0' claims an implausible 4294901760 bytes .*zip bomb")


def test_huge_length_claim_inside_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "claim.pkl"
    path.write_bytes(b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b"abc.")
    with _peak_memory_below(MEMORY_BOUND):
        _refused(path, r"corrupt or truncated pickle: expected 1099511627776 bytes")


def test_array_claiming_more_data_than_present(tmp_path: Path) -> None:
    dtype = Build(
        Call(Global("numpy", "dtype"), ("f4", False, True)), (3, "<", *[None] * 3, -1, -1, 0)
    )
    reconstruct = Call(
        Global("numpy.core.multiarray", "_reconstruct"), (Global("numpy", "ndarray"), (0,), b"b")
    )
    array = Build(reconstruct, (1, (10**9,), dtype, False, b"1234"))
    path = tmp_path / "short.pkl"
    path.write_bytes(dumps({"model": {"w": array}, "__author__": "x"}))
    with _peak_memory_below(MEMORY_BOUND):
        _refused(path, r"needs 4000000000 bytes, but the pickle holds 4")


@pytest.mark.parametrize("size", [(11,), (10**12,), (2, 3, 4)])
def test_tensor_larger_than_its_storage(tmp_path: Path, size: tuple[int, ...]) -> None:
    model = OrderedDict(ok=tensor(storage_id("0", "FloatStorage", 10), (10,)))
    model["head.weight"] = tensor(storage_id("0", "FloatStorage", 10), size)
    path = _zip_with(tmp_path, model, {"0": bytes(40)})
    with _peak_memory_below(MEMORY_BOUND):
        message = _refused(path, r"tensor 'head.weight': tensor of size .* needs \d+ elements")
    assert "storage '0' holds 10" in message


def test_view_past_the_end_through_offset_and_stride(tmp_path: Path) -> None:
    pid = storage_id("0", "FloatStorage", 12)
    model = OrderedDict(w=tensor(pid, (3, 4), stride=(4, 1), offset=1))
    _refused(_zip_with(tmp_path, model, {"0": bytes(48)}), "needs 13 elements of float32")


def test_expanded_tensor_beyond_the_output_limit(tmp_path: Path) -> None:
    pid = storage_id("0", "FloatStorage", 1)
    model = OrderedDict(w=tensor(pid, (10**6, 10**6), stride=(0, 0)))
    path = _zip_with(tmp_path, model, {"0": bytes(4)})
    with _peak_memory_below(MEMORY_BOUND):
        _refused(path, r"the model tensors need 4000000000000 bytes, more than the limit")


def test_storage_size_disagrees_with_its_entry(tmp_path: Path) -> None:
    model = OrderedDict(w=tensor(storage_id("0", "FloatStorage", 100), (10,)))
    path = _zip_with(tmp_path, model, {"0": bytes(40)})
    _refused(
        path,
        r"storage '0' claims 100 elements of float32 \(400 bytes\), but its zip entry holds 40",
    )


def test_storage_missing_from_the_archive(tmp_path: Path) -> None:
    model = OrderedDict(w=tensor(storage_id("5", "FloatStorage", 4), (4,)))
    path = _zip_with(tmp_path, model, {"0": bytes(16)})
    _refused(path, r"storage '5' is missing from the archive \(no entry archive/data/5\)")


def test_corrupt_data_pkl(tmp_path: Path) -> None:
    weight, data = array_tensor("0", np.ones(4, np.float32))
    path = _zip_with(tmp_path, OrderedDict(w=weight), {"0": data})
    corrupt_entry_data(path, "archive/data.pkl")
    _refused(path, r"corrupt zip entry 'archive/data.pkl': Bad CRC-32")


@pytest.mark.parametrize(
    ("obj", "pattern"),
    [
        ([1, 2], r"the checkpoint holds <list>, not a dict"),
        ({"model": [1]}, r"the model entry holds <list>, not a dict of tensors"),
        ({"model": {"w": 3}}, r"model entry 'w' holds 3, not a tensor or array"),
        ({"model": {7: 1.0}}, r"the model dict has a non-string key 7"),
    ],
)
def test_unexpected_structure(tmp_path: Path, obj: object, pattern: str) -> None:
    path = write_torch_zip(tmp_path / "c.pth", dumps(obj), {})
    _refused(path, pattern)


@pytest.mark.parametrize(
    ("size", "stride", "offset"),
    [((-1,), (1,), 0), ((2,), (1, 1), 0), ((2,), (1,), -3), (("2",), (1,), 0), ((2.0,), (1,), 0)],
)
def test_invalid_tensor_geometry(tmp_path: Path, size, stride, offset) -> None:
    hooks = Call(Global("collections", "OrderedDict"), ())
    call = Call(
        Global("torch._utils", "_rebuild_tensor_v2"),
        (storage_id("0", "FloatStorage", 4), offset, size, stride, False, hooks),
    )
    _refused(
        _zip_with(tmp_path, OrderedDict(w=call), {"0": bytes(16)}),
        r"tensor (size|stride|storage offset)",
    )


def _valid_sources(tmp_path: Path) -> list[bytes]:
    import pickle

    arrays = {"a.w": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "b": np.arange(2)}
    zipped = write_state_dict_zip(tmp_path / "base.pth", arrays, optimizer={"s": 1}, iteration=3)
    pickles = [pickle.dumps({"model": arrays, "__author__": "x"}, protocol=p) for p in (2, 4, 5)]
    return [zipped.read_bytes(), *pickles]


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(data=st.data())
def test_damaged_files_only_raise_checkpoint_error(tmp_path_factory, data) -> None:
    """Random byte damage to valid files: either a clean load or a CheckpointError, nothing else."""
    work = tmp_path_factory.mktemp("fuzz")
    sources = _valid_sources(work)
    blob = bytearray(data.draw(st.sampled_from(sources)))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.integers(0, 255))
    path = work / "damaged.bin"
    path.write_bytes(bytes(blob))
    try:
        state, info = load_checkpoint(path)
    except CheckpointError as exc:
        assert str(path) in str(exc) and len(str(exc)) < 1000
    else:
        assert info.num_tensors == len(state)

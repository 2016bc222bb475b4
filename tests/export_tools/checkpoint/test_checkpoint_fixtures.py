"""load_checkpoint on the real Detectron2 checkpoints of the shared fixtures."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from export_tools.checkpoint import CheckpointError, CheckpointInfo, load_checkpoint
from export_tools.checkpoint._torch_zip import TorchZipReader
from tests.export_tools.checkpoint.checkpoint_writers import corrupt_entry_data

MODELS = [
    "cascade_mask_rcnn_R_50_FPN",
    "faster_rcnn_R_50_DC5",
    "faster_rcnn_R_50_FPN",
    "faster_rcnn_X_FPN_gn_rgb",
    "keypoint_rcnn_R_50_FPN",
    "mask_rcnn_R_50_C4",
    "mask_rcnn_R_50_FPN",
    "mask_rcnn_R_50_FPN_demo",
    "panoptic_fpn_R_50",
    "retinanet_R_50_FPN",
]
MODELS_WITH_PKL = ["faster_rcnn_R_50_FPN", "mask_rcnn_R_50_FPN", "mask_rcnn_R_50_FPN_demo"]
C4_OR_DC5 = {"faster_rcnn_R_50_DC5", "mask_rcnn_R_50_C4"}


@pytest.mark.parametrize("model", MODELS)
def test_every_fixture_pth_loads(fixtures_dir: Path, model: str) -> None:
    path = fixtures_dir / model / "model_final.pth"
    state, info = load_checkpoint(path)

    assert isinstance(info, CheckpointInfo)
    assert info.path == str(path)
    assert info.format == "torch-zip"
    # Detectron2's trainer nests optimizer and scheduler state under "trainer".
    assert info.extra_keys == ("trainer", "iteration")
    assert not info.matching_heuristics
    assert info.num_tensors == len(state) > 100
    assert info.num_bytes == sum(a.nbytes for a in state.values())
    assert not any(k.startswith(("module.", "trainer", "optimizer", "iteration")) for k in state)
    for name, array in state.items():
        assert isinstance(array, np.ndarray), name
        assert array.flags.c_contiguous and array.flags.writeable, name
        assert array.dtype in (np.float32, np.int64), name
        assert np.isfinite(array).all(), name
    stem = "backbone.stem.conv1.weight" if model in C4_OR_DC5 else "backbone.bottom_up.stem.conv1"
    stem_weight = state[stem if stem.endswith("weight") else stem + ".weight"]
    assert stem_weight.ndim == 4 and stem_weight.shape[1:] == (3, 7, 7)


@pytest.mark.parametrize("model", MODELS_WITH_PKL)
def test_pth_and_pkl_of_a_model_are_identical(fixtures_dir: Path, model: str) -> None:
    pth_state, pth_info = load_checkpoint(fixtures_dir / model / "model_final.pth")
    pkl_state, pkl_info = load_checkpoint(fixtures_dir / model / "model_final.pkl")

    assert pkl_info.format == "pickle"
    assert pkl_info.extra_keys == ("__author__", "matching_heuristics")
    assert pkl_info.author == "fixture" and not pkl_info.matching_heuristics
    assert list(pth_state) == list(pkl_state)
    for name, array in pth_state.items():
        assert array.dtype == pkl_state[name].dtype, name
        assert array.shape == pkl_state[name].shape, name
        np.testing.assert_array_equal(array, pkl_state[name], err_msg=name)
    assert pth_info.num_bytes == pkl_info.num_bytes


def test_array_bytes_equal_the_raw_storage_entry(fixtures_dir: Path) -> None:
    path = fixtures_dir / "faster_rcnn_R_50_FPN" / "model_final.pth"
    state, _ = load_checkpoint(path)
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("archive/data/0")  # the first tensor torch pickled
    weight = state["backbone.fpn_lateral2.weight"]
    assert weight.shape == (32, 32, 1, 1)
    assert weight.tobytes() == raw


def _model_and_other_storage_keys(path: Path) -> tuple[set[str], set[str]]:
    with TorchZipReader(str(path), 2**32) as reader:
        top = reader.load()
        every = set(reader.storage_keys)
    model = {ref.storage.key for ref in top["model"].values()}
    return model, every - model


def test_optimizer_storages_are_never_read(fixtures_dir: Path, tmp_path: Path) -> None:
    original = fixtures_dir / "faster_rcnn_R_50_FPN" / "model_final.pth"
    model_keys, other_keys = _model_and_other_storage_keys(original)
    assert other_keys, "the fixture should carry optimizer (momentum) storages"
    copy = tmp_path / "model_final.pth"
    shutil.copyfile(original, copy)
    # Reading any of these storages now fails the zip CRC check.
    corrupt_entry_data(copy, *(f"archive/data/{key}" for key in other_keys))

    expected, _ = load_checkpoint(original)
    state, info = load_checkpoint(copy)

    assert info.num_tensors == len(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(state[name], array, err_msg=name)

    corrupt_entry_data(copy, f"archive/data/{sorted(model_keys)[0]}")
    with pytest.raises(CheckpointError, match=r"corrupt zip entry 'archive/data/.*Bad CRC"):
        load_checkpoint(copy)


def test_small_limit_refuses_a_fixture_clearly(fixtures_dir: Path) -> None:
    path = fixtures_dir / "faster_rcnn_R_50_FPN" / "model_final.pth"
    with pytest.raises(CheckpointError, match=r"limit of 100000 bytes") as err:
        load_checkpoint(path, max_bytes=100_000)
    assert str(path) in str(err.value)

"""``backend="auto"``: the fastest installed backend, measured once per model, machine and engine
versions, then read from the cache; forced backends are never measured.

Nothing here asserts a timing: which backend wins depends on the machine. The tests check when
``auto`` measures (by counting calls of its timer), what it caches and what it loads.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from d2common.errors import ModelError
from daemon.inference.backends import BACKEND_CHOICES, BACKENDS, LOCAL_BACKEND_CHOICES, auto
from daemon.inference.predictor import Predictor

MODEL = "faster_rcnn_R_50_FPN"
SMALL = {"min_size": 224, "max_size": 320}  # a small network input: quick inferences
needs_two = pytest.mark.skipif(len(auto.candidates()) < 2,
                               reason="auto measures only with two usable backends installed "
                                      "(pip install 'd2stream[openvino]')")


@pytest.fixture()
def timed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The backends ``auto`` timed so far (its real timer runs, once per backend)."""
    monkeypatch.setattr(auto, "TIMED_RUNS", 1)
    calls: list[str] = []
    real = auto.time_backend

    def spy(backend, feeds):
        calls.append(backend.name)
        return real(backend, feeds)

    monkeypatch.setattr(auto, "time_backend", spy)
    return calls


def _choice_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*-backend-*.json"))


@needs_two
def test_first_start_measures_every_backend_then_the_choice_is_cached(exported, tmp_path, timed,
                                                                      caplog):
    cache = tmp_path / "cache"
    caplog.set_level(logging.INFO, logger="daemon.inference.backends.auto")
    first = Predictor(exported(MODEL), **SMALL, num_threads=1, optimized_cache=str(cache))
    assert sorted(timed) == sorted(auto.candidates())
    [path] = _choice_files(cache)
    saved = json.loads(path.read_text())
    assert saved["backend"] == first.backend.name
    assert set(saved["seconds"]) == set(auto.candidates())
    assert min(saved["seconds"], key=saved["seconds"].get) == first.backend.name
    assert saved["key"]["num_threads"] == 1 and saved["key"]["backends"]["onnxruntime"]
    assert f"backend auto: {first.backend.name} for {Path(exported(MODEL)).name} (measured" \
        in caplog.text and " ms" in caplog.text

    timed.clear()
    caplog.clear()
    second = Predictor(exported(MODEL), **SMALL, num_threads=1, optimized_cache=str(cache))
    assert timed == []  # read from the cache, nothing measured
    assert second.backend.name == first.backend.name
    assert "cached choice" in caplog.text and _choice_files(cache) == [path]


@needs_two
def test_a_changed_key_measures_again(exported, tmp_path, timed, monkeypatch):
    cache, model = tmp_path / "cache", tmp_path / "model.onnx"
    shutil.copyfile(exported(MODEL), model)
    Predictor(model, **SMALL, num_threads=1, optimized_cache=str(cache))
    assert len(timed) == 2 and len(_choice_files(cache)) == 1

    timed.clear()
    Predictor(model, **SMALL, num_threads=2, optimized_cache=str(cache))  # other thread count
    assert len(timed) == 2

    timed.clear()
    real_versions = auto.backend_versions
    monkeypatch.setattr(auto, "backend_versions",
                        lambda names: {**real_versions(names), "onnxruntime": "99.0"})
    Predictor(model, **SMALL, num_threads=1, optimized_cache=str(cache))  # an upgraded engine
    assert len(timed) == 2
    monkeypatch.setattr(auto, "backend_versions", real_versions)

    timed.clear()
    shutil.copyfile(exported("mask_rcnn_R_50_FPN"), model)  # same file name, new content
    Predictor(model, **SMALL, num_threads=1, optimized_cache=str(cache))
    assert len(timed) == 2 and len(_choice_files(cache)) == 4

    timed.clear()
    Predictor(model, **SMALL, num_threads=1, optimized_cache=str(cache))
    assert timed == []


@pytest.mark.parametrize("forced", ["onnxruntime", "openvino"])
def test_a_forced_backend_is_loaded_without_measuring(forced, exported, tmp_path, timed):
    if forced not in auto.available_backends():
        pytest.skip(f"{forced} not installed")
    cache = tmp_path / "cache"
    pred = Predictor(exported(MODEL), **SMALL, num_threads=1, backend=forced,
                     optimized_cache=str(cache))
    assert pred.backend.name == forced
    assert timed == [] and not _choice_files(cache)


@needs_two
@pytest.mark.parametrize(("content", "logged"), [
    ("{not json", "is unreadable (JSONDecodeError"), ("", "is unreadable (JSONDecodeError"),
    ('{"version": 1, "key": 3}', "is for another model or machine"),
    ('{"version": 1, "key": null, "backend": "openvino", "seconds": {}}',
     "is for another model or machine"),
    ('["a", "list"]', "is unreadable (AttributeError")])
def test_a_corrupt_choice_file_is_measured_again_and_rewritten(content, logged, exported,
                                                               tmp_path, timed, caplog):
    caplog.set_level(logging.INFO, logger="daemon.inference.backends.auto")
    cache = tmp_path / "cache"
    Predictor(exported(MODEL), **SMALL, num_threads=1, optimized_cache=str(cache))
    [path] = _choice_files(cache)
    path.write_text(content)
    timed.clear()
    pred = Predictor(exported(MODEL), **SMALL, num_threads=1, optimized_cache=str(cache))
    assert len(timed) == 2
    saved = json.loads(path.read_text())
    assert saved["backend"] == pred.backend.name and set(saved["seconds"]) == set(timed)
    assert f"backend choice {path} {logged}" in caplog.text


@needs_two
def test_a_cached_choice_of_a_backend_no_longer_installed_is_measured_again(exported, tmp_path,
                                                                            timed, caplog):
    cache = tmp_path / "cache"
    Predictor(exported(MODEL), **SMALL, num_threads=1, optimized_cache=str(cache))
    [path] = _choice_files(cache)
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "backend": "tensorrt"}))
    timed.clear()
    pred = Predictor(exported(MODEL), **SMALL, num_threads=1, optimized_cache=str(cache))
    assert len(timed) == 2 and pred.backend.name in auto.candidates()
    assert "'tensorrt', which is not installed" in caplog.text


def test_auto_chooses_among_local_engines_only_never_remote():
    assert "remote" in BACKENDS and "remote" in BACKEND_CHOICES
    assert "remote" not in auto.candidates() and "remote" not in LOCAL_BACKEND_CHOICES
    assert set(auto.candidates()) <= set(LOCAL_BACKEND_CHOICES)


@needs_two
def test_a_cached_choice_of_remote_is_measured_again(exported, tmp_path, timed, caplog):
    cache = tmp_path / "cache"
    Predictor(exported(MODEL), **SMALL, num_threads=1, optimized_cache=str(cache))
    [path] = _choice_files(cache)
    path.write_text(json.dumps({**json.loads(path.read_text()), "backend": "remote"}))
    timed.clear()
    pred = Predictor(exported(MODEL), **SMALL, num_threads=1, optimized_cache=str(cache))
    assert len(timed) == 2 and pred.backend.name in auto.candidates()
    assert "'remote', which is not installed" in caplog.text


@needs_two
def test_an_unwritable_choice_folder_is_logged_and_measured_each_time(exported, tmp_path, timed,
                                                                       monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("D2STREAM_CACHE", str(blocker))  # no optimized_cache: the d2stream cache
    for _ in range(2):
        pred = Predictor(exported(MODEL), **SMALL, num_threads=1)
        assert pred.backend.name in auto.candidates()
    assert len(timed) == 4
    assert "cannot cache the backend choice" in caplog.text


def test_default_choice_folder_is_the_d2stream_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("D2STREAM_CACHE", str(tmp_path / "d2"))
    assert auto.choice_dir(auto.BackendOptions()) == tmp_path / "d2" / "backends"
    assert auto.choice_dir(auto.BackendOptions(optimized_cache=str(tmp_path / "o"))) == \
        tmp_path / "o"


def test_a_single_usable_backend_is_loaded_without_measuring(exported, tmp_path, timed,
                                                            monkeypatch):
    monkeypatch.setattr(auto, "candidates", lambda: ["onnxruntime"])
    pred = Predictor(exported(MODEL), **SMALL, num_threads=1, optimized_cache=str(tmp_path))
    assert pred.backend.name == "onnxruntime" and timed == [] and not _choice_files(tmp_path)


@needs_two
def test_a_backend_that_cannot_load_the_model_is_not_chosen(exported, tmp_path, timed,
                                                            monkeypatch, caplog):
    real = auto.create_backend

    def create(name, model, options):
        if name == "openvino":
            raise ModelError(f"{model}: cannot be loaded by OpenVINO (unsupported op)")
        return real(name, model, options)

    monkeypatch.setattr(auto, "create_backend", create)
    pred = Predictor(exported(MODEL), **SMALL, num_threads=1, optimized_cache=str(tmp_path))
    assert pred.backend.name == "onnxruntime" and timed == ["onnxruntime"]
    [path] = _choice_files(tmp_path)
    assert "unsupported op" in json.loads(path.read_text())["errors"]["openvino"]
    assert "openvino cannot load" in caplog.text


def test_no_executable_memory_leaves_out_jit_backends(monkeypatch):
    monkeypatch.setattr(auto, "executable_memory_allowed", lambda: False)
    assert "openvino" not in auto.candidates() and "onnxruntime" in auto.candidates()


def test_forced_openvino_without_executable_memory_is_a_clear_model_error(exported,
                                                                          monkeypatch):
    from daemon.inference.backends import base

    if "openvino" not in auto.available_backends():
        pytest.skip("openvino not installed")
    monkeypatch.setattr(base, "executable_memory_allowed", lambda: False)
    with pytest.raises(ModelError, match="writable\\+executable memory.*use onnxruntime or auto"):
        Predictor(exported(MODEL), **SMALL, backend="openvino")


def test_this_process_may_map_executable_memory():
    from daemon.inference.backends.base import executable_memory_allowed

    assert executable_memory_allowed() is True  # outside a sandbox (the sandbox test: False)


@needs_two
def test_auto_outputs_equal_the_chosen_backend_forced(exported, fixtures, tmp_path):
    model = exported("mask_rcnn_R_50_FPN")
    chosen = Predictor(model, optimized_cache=str(tmp_path))
    forced = Predictor(model, backend=chosen.backend.name)
    x = np.load(fixtures / "mask_rcnn_R_50_FPN" / "expected_0.npz")["input"][None]
    a, b = chosen.run_network(x), forced.run_network(x)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])

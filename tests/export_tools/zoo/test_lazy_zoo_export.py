"""LazyConfig zoo entries end to end: a local mirror on 127.0.0.1 serves a full-width synthetic
checkpoint of new_baselines/mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ (the tensor names and shapes
that model's checkpoint has) -> download with checksum -> export -> ONNX Runtime runs it."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import yaml

from benchmarks.synthetic_checkpoint import CalibratedWeights
from daemon.cli.main import main
from daemon.inference.predictor import Predictor
from export_tools.export import build_onnx_from_weights
from export_tools.lazy import is_lazy_config
from export_tools.lazy.translate import load_lazy_config
from export_tools.zoo import get_entry
from export_tools.zoo.datasets import COCO_THINGS
from tests.conftest import require_fixtures
from tests.export_tools.zoo.http_server import FileServer

OFFICIAL = "new_baselines/mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ"
MIRRORED = "mirror/mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official entry's architecture at full width, synthetic weights, as a zoo ``.pkl``."""
    folder = tmp_path_factory.mktemp("regnety")
    config = get_entry(OFFICIAL).write_config(folder / "config.yaml")
    cfg = load_lazy_config(config, {})  # its lambda norms are written by name
    weights = CalibratedWeights.for_config(cfg)
    build_onnx_from_weights(cfg, weights)  # learns every name and shape the export reads
    path = folder / "model_final.pkl"
    with path.open("wb") as fh:
        pickle.dump({"model": weights.state_dict(), "__author__": "d2stream test"}, fh)
    return path


@pytest.fixture
def mirror(tmp_path: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[FileServer, str]]:
    """``MIRRORED``: the official entry's LazyConfig with the synthetic weights (checked by
    SHA-256 and by the MD5 prefix of its file name), served from 127.0.0.1."""
    data = checkpoint.read_bytes()
    rel = f"7/model_final_{hashlib.md5(data).hexdigest()[:6]}.pkl"
    www = tmp_path / "www"
    (www / MIRRORED / rel).parent.mkdir(parents=True)
    _link(checkpoint, www / MIRRORED / rel)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({MIRRORED: {
        "weights": rel, "dataset": "coco", "lazy_config": OFFICIAL,
        "sha256": hashlib.sha256(data).hexdigest()}}))
    monkeypatch.setenv("D2STREAM_ZOO_CATALOG", str(catalog))
    monkeypatch.setenv("D2STREAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("D2STREAM_OFFLINE", raising=False)
    with FileServer(www) as server:
        monkeypatch.setenv("D2STREAM_ZOO_URL", server.base_url)
        yield server, f"/{MIRRORED}/{rel}"


def _link(src: Path, dst: Path) -> None:
    """``dst`` is ``src`` (a hard link: the server refuses symlinks out of its root)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


def test_lazy_zoo_entry_downloads_exports_and_runs(mirror, tmp_path, capsys):
    server, url_path = mirror
    out = tmp_path / "regnety.onnx"
    assert main(["zoo", "export", MIRRORED, "-o", str(out), "--no-progress"]) == 0
    assert [p for p, _ in server.script.requests] == [url_path]
    assert capsys.readouterr().out.strip().endswith("regnety.onnx")
    (cached,) = (tmp_path / "cache" / "weights").rglob("model_final_*.pkl")
    config = cached.with_name("config.yaml")
    assert is_lazy_config(config)  # the LazyConfig tree, as LazyConfig.save writes it
    assert config.read_text() == get_entry(OFFICIAL).config_text(cached)
    meta = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["d2stream"])
    assert meta["class_names"] == list(COCO_THINGS)
    assert (meta["min_size_test"], meta["max_size_test"]) == (800, 1333)
    # ONNX Runtime runs the exported graph (at 320 px to keep the test short).
    predictor = Predictor(out, min_size=320, max_size=320)
    image = cv2.imread(str(require_fixtures() / "lazy" / "mask_rcnn_R_50_FPN_100ep_LSJ" /
                           "image_0.png"))
    raw = predictor.run_network(predictor.preprocess(image))
    assert raw["boxes"].shape[1] == 4 and np.isfinite(raw["boxes"]).all()
    assert raw["mask_probs"].shape == (len(raw["boxes"]), 28, 28)
    pred = predictor.predict_compact(image)
    assert len(pred.scores) == len(raw["scores"])


def test_official_lazy_names_use_the_published_urls_and_checksums(mirror, checkpoint, caplog):
    """The official entries are downloaded from <base>/<name or url_dir>/<id>/<file>; a file that
    is not the published one fails the MD5 prefix its name carries."""
    server, _ = mirror
    entry = get_entry(OFFICIAL)
    vitdet = get_entry("ViTDet/COCO/mask_rcnn_vitdet_b_100ep")
    for served in (entry, vitdet):
        target = server.root / served.url(server.base_url).removeprefix(server.base_url)
        target.parent.mkdir(parents=True, exist_ok=True)
        _link(checkpoint, target)
    assert main(["zoo", "download", OFFICIAL, "--no-progress"]) == 1
    assert main(["zoo", "download", vitdet.name, "--no-progress"]) == 1
    assert [p for p, _ in server.script.requests] == [
        "/new_baselines/mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ/42047784/model_final_6ba57e.pkl",
        "/ViTDet/COCO/mask_rcnn_vitdet_b/f325346929/model_final_61ccd1.pkl"]
    first, second = _errors(caplog)
    assert "expected it to start with 6ba57e" in first and "61ccd1" in second


def test_vitdet_h_over_2_gib_is_listed_as_exportable(capsys):
    """ViT-H's 2.5 GiB of weights are written with ONNX external data, so it is no refusal."""
    name = "ViTDet/COCO/mask_rcnn_vitdet_h_75ep"
    assert get_entry(name).refused is None
    assert main(["zoo", "list", "vitdet_h"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith(name)]
    assert listed and "not exportable" not in listed[0]


def test_refused_lazy_entry_is_listed_and_not_downloaded(mirror, tmp_path, monkeypatch, caplog,
                                                         capsys):
    """An entry marked ``refused`` (a catalog's own) is listed with its reason and never
    downloaded."""
    server, _ = mirror
    name = "mine/vitdet_b_tta"
    catalog = tmp_path / "refused.yaml"
    catalog.write_text(yaml.safe_dump({name: {
        "weights": f"{server.base_url}/{name}/model_final.pkl", "dataset": "coco",
        "lazy_config": "ViTDet/COCO/mask_rcnn_vitdet_b_100ep",
        "refused": "key TEST.AUG.ENABLED: test-time augmentation"}}))
    monkeypatch.setenv("D2STREAM_ZOO_CATALOG", str(catalog))
    assert main(["zoo", "list", "vitdet_b_tta"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert any(line.startswith(name) and "not exportable" in line and "TEST.AUG" in line
               for line in listed)
    assert main(["zoo", "export", name, "--no-progress"]) == 2
    (err,) = _errors(caplog)
    assert "cannot be exported" in err and "TEST.AUG" in err and "\n" not in err
    assert server.script.requests == []
    assert main(["zoo", "show", name]) == 0
    shown = capsys.readouterr().out
    assert "refused:" in shown and "_target_: detectron2.modeling.ViT" in shown

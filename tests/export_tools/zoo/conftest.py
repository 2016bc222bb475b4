"""Zoo test fixtures: a local mirror serving a fixture model under a user catalog entry."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.export_tools.zoo.http_server import FileServer

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"
MODEL = "faster_rcnn_R_50_FPN"
ENTRY = f"fixture/{MODEL}"


@dataclass
class Mirror:
    server: FileServer
    entry: str
    weights_url_path: str
    cache: Path
    fixture: Path


@pytest.fixture
def fixture_model_dir() -> Path:
    folder = FIXTURES / MODEL
    if not (folder / "model_final.pkl").is_file():
        pytest.fail(f"Detectron2 fixture {folder} not found (expected ../shared/fixtures beside "
                    "the repository)", pytrace=False)
    return folder


@pytest.fixture
def mirror(tmp_path: Path, fixture_model_dir: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[Mirror]:
    """A zoo entry ``fixture/faster_rcnn_R_50_FPN`` served from 127.0.0.1, with a fresh cache."""
    pkl = fixture_model_dir / "model_final.pkl"
    data = pkl.read_bytes()
    rel = f"1/model_final_{hashlib.md5(data).hexdigest()[:6]}.pkl"
    www = tmp_path / "www"
    (www / ENTRY / rel).parent.mkdir(parents=True)
    shutil.copyfile(pkl, www / ENTRY / rel)
    config = yaml.safe_load((fixture_model_dir / "config.yaml").read_text())
    config["MODEL"].pop("WEIGHTS", None)
    manifest = json.loads((fixture_model_dir / "manifest.json").read_text())
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({ENTRY: {
        "weights": rel, "class_names": manifest["thing_classes"],
        "sha256": hashlib.sha256(data).hexdigest(), "overrides": config,
    }}))
    cache = tmp_path / "cache"
    monkeypatch.setenv("D2STREAM_ZOO_CATALOG", str(catalog))
    monkeypatch.setenv("D2STREAM_CACHE", str(cache))
    monkeypatch.delenv("D2STREAM_OFFLINE", raising=False)
    with FileServer(www) as server:
        monkeypatch.setenv("D2STREAM_ZOO_URL", server.base_url)
        yield Mirror(server, ENTRY, f"/{ENTRY}/{rel}", cache, fixture_model_dir)

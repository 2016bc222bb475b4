"""Hostile exported models: bad metadata, wrong output shapes, bad class indices (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import helper

from d2common.errors import ModelError
from d2common.metadata import METADATA_KEY
from daemon.inference.predictor import Predictor
from tests.conftest import require_fixtures
from tests.daemon.daemon_helpers import daemon_config, run_cli, write_yaml

DEMO = "mask_rcnn_R_50_FPN_demo"


def _with_metadata(source: Path, target: Path, edit) -> Path:
    model = onnx.load(str(source))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = edit(json.loads(prop.value))
    onnx.save(model, str(target))
    return target


def _patch(field: str, value: object):
    return lambda meta: json.dumps({**meta, field: value})


BAD_METADATA = {
    "list": (lambda meta: json.dumps([meta]), "metadata is a JSON list, not an object"),
    "string": (lambda meta: json.dumps("d2stream"), "metadata is a JSON str, not an object"),
    "min_size": (_patch("min_size_test", "abc"), "min_size_test: Input should be a valid int"),
    "class_names": (_patch("class_names", 5), "class_names: Input should be a valid list"),
    "outputs": (_patch("outputs", None), "outputs: Input should be a valid list"),
    "nested": (lambda meta: "[" * 100_000 + "]" * 100_000, "unreadable d2stream metadata"),
    "input_format": (_patch("input_format", "YUV"), "input_format: Input should be 'BGR'"),
}


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_bad_metadata_is_one_model_error(case: str, tmp_path: Path, exported) -> None:
    edit, problem = BAD_METADATA[case]
    path = _with_metadata(exported(DEMO), tmp_path / "bad.onnx", edit)
    with pytest.raises(ModelError) as err:
        Predictor(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_run_with_bad_metadata_exits_78(tmp_path: Path, exported, demo_video) -> None:
    video, _ = demo_video(4)
    path = _with_metadata(exported(DEMO), tmp_path / "bad.onnx", BAD_METADATA["list"][0])
    config = write_yaml(tmp_path / "c.yaml", daemon_config(path, video))
    done = run_cli("run", "--config", config, cwd=tmp_path, timeout=240)
    assert done.returncode == 78, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "metadata is a JSON list, not an object" in done.stderr


def _with_output_node(source: Path, target: Path, output: str, op: str, **attrs) -> Path:
    """Route graph output ``output`` through one extra node (``Sub 1000`` or ``Flatten``)."""
    model = onnx.load(str(source))
    graph = model.graph
    for node in graph.node:
        node.output[:] = [f"{output}_orig" if o == output else o for o in node.output]
    inputs = [f"{output}_orig"]
    if op == "Sub":
        graph.initializer.append(onnx.numpy_helper.from_array(np.array(1000, np.int64), "k1000"))
        inputs.append("k1000")
    graph.node.append(helper.make_node(op, inputs, [output], **attrs))
    for value in graph.output:
        if value.name == output:
            value.type.tensor_type.ClearField("shape")
    onnx.save(model, str(target))
    return target


@pytest.mark.parametrize(("output", "op", "attrs", "problem"), [
    ("classes", "Sub", {}, "model output 'classes': class index -10"),
    ("boxes", "Flatten", {"axis": 0}, "model output 'boxes': shape (1, "),
])
def test_bad_outputs_fail_at_the_boundary(tmp_path, exported, output, op, attrs, problem):
    path = _with_output_node(exported(DEMO), tmp_path / "bad.onnx", output, op, **attrs)
    predictor = Predictor(path)
    image = cv2.imread(str(require_fixtures() / DEMO / "image_0.png"))
    with pytest.raises(ModelError, match=problem.replace("(", r"\(")):
        predictor.predict_compact(image)

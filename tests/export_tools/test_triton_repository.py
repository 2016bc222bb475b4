"""``export --triton-repository``: config.pbtxt checked against Triton's documented fields.

(The ``tritonclient`` package that ships Triton's ``model_config`` protobuf schema is not a
dependency; the text is parsed here with a small reader of the protobuf text format.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest

from d2common.errors import ModelError
from export_tools.triton_repository import write_repository

TOKEN = re.compile(r'\s*(?:(\{|\}|\[|\]|,|:)|("(?:[^"\\]|\\.)*")|([^\s{}\[\],:]+))')
FIELDS = {"name", "platform", "max_batch_size", "input", "output", "instance_group",
          "parameters"}  # ModelConfig fields used (model_config.proto)


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        m = TOKEN.match(text, pos)
        assert m, text[pos:pos + 40]
        out.append(m.group(0).strip())
        pos = m.end()
    return out


def _value(tok: list[str]) -> Any:
    t = tok.pop(0)
    if t == "{":
        return _message(tok, "}")
    if t == "[":
        items = []
        while tok[0] != "]":
            items.append(_value(tok))
            if tok[0] == ",":
                tok.pop(0)
        tok.pop(0)
        return items
    return json.loads(t) if t.startswith('"') else (int(t) if re.fullmatch(r"-?\d+", t) else t)


def _message(tok: list[str], end: str | None) -> dict[str, list[Any]]:
    fields: dict[str, list[Any]] = {}
    while tok and tok[0] != end:
        key = tok.pop(0)
        if tok[0] == ":":
            tok.pop(0)
        value = _value(tok)
        fields.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    if tok:
        tok.pop(0)
    return fields


@pytest.fixture(scope="module")
def demo_model(export_fixture_model) -> Path:  # noqa: ANN001
    return export_fixture_model("mask_rcnn_R_50_FPN_demo")


def test_repository_layout_and_config(demo_model: Path, tmp_path: Path) -> None:
    folder = write_repository(demo_model, tmp_path / "repo", "demo")
    assert folder == tmp_path / "repo" / "demo"
    assert (folder / "1" / "model.onnx").read_bytes() == demo_model.read_bytes()
    config = _message(_tokens((folder / "config.pbtxt").read_text()), None)
    assert set(config) <= FIELDS
    assert config["name"] == ["demo"] and config["platform"] == ["onnxruntime_onnx"]
    assert config["max_batch_size"] == [0]
    session = ort.InferenceSession(str(demo_model), providers=["CPUExecutionProvider"])
    (image,) = config["input"]
    assert image["name"] == ["image"] and image["data_type"] == ["TYPE_FP32"]
    assert image["dims"] == [1, 3, -1, -1]  # dynamic H and W
    assert [o["name"][0] for o in config["output"]] == [o.name for o in session.get_outputs()]
    types = {"tensor(float)": "TYPE_FP32", "tensor(int64)": "TYPE_INT64",
             "tensor(int32)": "TYPE_INT32", "tensor(bool)": "TYPE_BOOL"}
    for out, onnx_out in zip(config["output"], session.get_outputs(), strict=True):
        assert out["data_type"] == [types[onnx_out.type]]
        assert len(out["dims"]) == len(onnx_out.shape)
    params = {p["key"][0]: p["value"][0]["string_value"][0] for p in config["parameters"]}
    assert params == dict(session.get_modelmeta().custom_metadata_map)


def test_bad_name_and_bad_file_are_one_line_errors(demo_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model name 'a b'"):
        write_repository(demo_model, tmp_path, "a b")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="bad.onnx: not a readable ONNX model"):
        write_repository(bad, tmp_path / "repo")

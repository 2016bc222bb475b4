"""Bad files, keys and values: each refused with a ConfigError naming file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from export_tools.config import ConfigError, load_config
from export_tools.errors import ExportError


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(missing)
    assert info.value.file == str(missing)
    assert isinstance(info.value, ExportError)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("- 1\n- 2\n", "mapping"),
        ("just a string\n", "mapping"),
        ("", "empty"),
        ("# only a comment\n", "empty"),
    ],
)
def test_top_level_must_be_a_mapping(write_yaml, text: str, match: str) -> None:
    path = write_yaml(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert info.value.file == str(path)


def test_yaml_syntax_error_names_the_line(write_yaml) -> None:
    text = "MODEL:\n  RESNETS:\n    DEPTH: 50\n  FPN: [res2, res3\nINPUT:\n  FORMAT: BGR\n"
    path = write_yaml(text)
    with pytest.raises(ConfigError, match=r"line [45]") as info:
        load_config(path)
    assert info.value.file == str(path)


def test_yaml_bad_indentation_names_the_line(write_yaml) -> None:
    path = write_yaml("MODEL:\n  MASK_ON: true\n   KEYPOINT_ON: true\n")
    with pytest.raises(ConfigError, match=r"line 3"):
        load_config(path)


@pytest.mark.parametrize(
    "text",
    [
        "MODEL:\n  WEIGHTS: !!python/object/apply:os.system ['echo pwned']\n",
        "!!python/object/apply:os.system ['echo pwned']\n",
        "MODEL: !!python/name:os.system\n",
    ],
)
def test_unsafe_yaml_tags_are_refused(write_yaml, text: str) -> None:
    with pytest.raises(ConfigError, match="tag") as info:
        load_config(write_yaml(text))
    assert "line 1" in str(info.value) or "line 2" in str(info.value)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"MODEL:\n  WEIGHTS: caf\xe9.pth\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(path)


def test_unknown_key_names_file_key_and_suggestion(write_yaml) -> None:
    path = write_yaml({"MODEL": {"RPN": {"NMS_THRES": 0.6}}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.key == "MODEL.RPN.NMS_THRES"
    assert err.file == str(path)
    assert "did you mean MODEL.RPN.NMS_THRESH" in str(err)
    assert str(path) in str(err)


def test_unknown_key_points_to_the_same_name_elsewhere(write_yaml) -> None:
    with pytest.raises(ConfigError, match="exists at MODEL.ROI_HEADS.SCORE_THRESH_TEST"):
        load_config(write_yaml({"MODEL": {"SCORE_THRESH_TEST": 0.5}}))


def test_project_keys_are_refused_not_ignored(write_yaml) -> None:
    # PointRend adds MODEL.POINT_HEAD; DeepLab adds SOLVER.POLY_LR_POWER.
    for data, key in (
        ({"MODEL": {"POINT_HEAD": {"NUM_CLASSES": 3}}}, "MODEL.POINT_HEAD"),
        ({"SOLVER": {"POLY_LR_POWER": 0.9}}, "SOLVER.POLY_LR_POWER"),
    ):
        with pytest.raises(ConfigError, match="projects") as info:
            load_config(write_yaml(data))
        assert info.value.key == key


def test_unknown_top_level_key(write_yaml) -> None:
    with pytest.raises(ConfigError, match="did you mean MODEL") as info:
        load_config(write_yaml({"MODLE": {"MASK_ON": True}}))
    assert info.value.key == "MODLE"


def test_non_string_key_is_refused(write_yaml) -> None:
    with pytest.raises(ConfigError, match="strings") as info:
        load_config(write_yaml("MODEL:\n  1: 2\n"))
    assert info.value.key == "MODEL.1"


# (YAML text under MODEL or another section, key, expected and got words in the message)
WRONG_TYPES = [
    ("INPUT:\n  FORMAT: 3\n", "INPUT.FORMAT", "expected str, got int"),
    ("MODEL:\n  RESNETS:\n    DEPTH: fifty\n", "MODEL.RESNETS.DEPTH", "expected int, got str"),
    ("MODEL:\n  RESNETS:\n    DEPTH: 50.0\n", "MODEL.RESNETS.DEPTH", "expected int, got float"),
    ("MODEL:\n  RESNETS:\n    DEPTH: true\n", "MODEL.RESNETS.DEPTH", "expected int, got bool"),
    ("MODEL:\n  MASK_ON: 1\n", "MODEL.MASK_ON", "expected bool, got int"),
    ("MODEL:\n  MASK_ON: 'yes please'\n", "MODEL.MASK_ON", "expected bool, got str"),
    ("MODEL:\n  FPN:\n    NORM: null\n", "MODEL.FPN.NORM", "expected str, got null"),
    ("MODEL:\n  PIXEL_MEAN: 100.0\n", "MODEL.PIXEL_MEAN", "expected list, got float"),
    ("MODEL:\n  RPN:\n    NMS_THRESH: [0.7]\n", "MODEL.RPN.NMS_THRESH", "expected float, got list"),
    ("MODEL:\n  RPN:\n    NMS_THRESH: {A: 1}\n", "MODEL.RPN.NMS_THRESH", "got mapping"),
    ("MODEL: 5\n", "MODEL", "section; expected a mapping, got int"),
    ("MODEL:\n  RPN: [1, 2]\n", "MODEL.RPN", "section; expected a mapping, got list"),
    ("MODEL:\n  PIXEL_MEAN: [a, b, c]\n", "MODEL.PIXEL_MEAN", "list of number items"),
    ("MODEL:\n  PIXEL_MEAN: [[1], [2], [3]]\n", "MODEL.PIXEL_MEAN", "at most 1 level"),
    ("MODEL:\n  RPN:\n    IN_FEATURES: [1, 2]\n", "MODEL.RPN.IN_FEATURES", "list of str items"),
    ("MODEL:\n  FPN:\n    IN_FEATURES: [res2, 3]\n", "MODEL.FPN.IN_FEATURES", "list of str items"),
    ("SOLVER:\n  WEIGHT_DECAY_BIAS: abc\n", "SOLVER.WEIGHT_DECAY_BIAS", "expected float or null"),
    ("TEST:\n  AUG:\n    MIN_SIZES: [{a: 1}]\n", "TEST.AUG.MIN_SIZES", "mapping"),
    ("SOLVER:\n  BASE_LR: 2020-01-01\n", "SOLVER.BASE_LR", "expected float, got date"),
    ("SOLVER:\n  MAX_ITER: 2020-01-01\n", "SOLVER.MAX_ITER", "expected int, got date"),
]


@pytest.mark.parametrize(("text", "key", "words"), WRONG_TYPES)
def test_wrong_value_type(write_yaml, text: str, key: str, words: str) -> None:
    path = write_yaml(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key
    assert info.value.file == str(path)
    assert words in str(info.value)


# (YAML text, dotted key, value after loading) for the coercions Detectron2 also accepts.
ACCEPTED_COERCIONS = [
    ("SOLVER:\n  BASE_LR: 1\n", "SOLVER.BASE_LR", 1.0),
    ("SOLVER:\n  BASE_LR: '1e-4'\n", "SOLVER.BASE_LR", 0.0001),
    ("SOLVER:\n  BASE_LR: 1e-4\n", "SOLVER.BASE_LR", 0.0001),
    ("SOLVER:\n  STEPS: (100, 200)\n", "SOLVER.STEPS", [100, 200]),
    ("SOLVER:\n  WEIGHT_DECAY_BIAS: null\n", "SOLVER.WEIGHT_DECAY_BIAS", None),
    ("SOLVER:\n  WEIGHT_DECAY_BIAS: 0\n", "SOLVER.WEIGHT_DECAY_BIAS", 0.0),
    ("SOLVER:\n  CLIP_GRADIENTS:\n    NORM_TYPE: .inf\n", "SOLVER.CLIP_GRADIENTS.NORM_TYPE",
     float("inf")),
    ("MODEL:\n  ANCHOR_GENERATOR:\n    SIZES: [32, 64]\n", "MODEL.ANCHOR_GENERATOR.SIZES",
     [32, 64]),
    ("MODEL:\n  ANCHOR_GENERATOR:\n    SIZES: [[32.5, 40]]\n", "MODEL.ANCHOR_GENERATOR.SIZES",
     [[32.5, 40]]),
    ("MODEL:\n  MASK_ON: yes\n", "MODEL.MASK_ON", True),
    ("TEST:\n  EXPECTED_RESULTS: [[bbox, AP, 38.5, 0.2]]\n", "TEST.EXPECTED_RESULTS",
     [["bbox", "AP", 38.5, 0.2]]),
    ("MODEL:\n  PIXEL_STD: !!python/tuple [57.4, 57.1, 58.4]\n", None, None),
]


@pytest.mark.parametrize(("text", "key", "expected"), ACCEPTED_COERCIONS)
def test_accepted_coercions(write_yaml, text: str, key: str | None, expected) -> None:
    path = write_yaml(text)
    if key is None:  # a python/tuple tag is still a Python tag: refused by safe_load
        with pytest.raises(ConfigError, match="tag"):
            load_config(path)
        return
    value = load_config(path).get(key)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("version", [1, 3, "two"])
def test_other_versions_are_refused(write_yaml, version) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_yaml({"VERSION": version}))
    assert info.value.key == "VERSION"


def test_self_referencing_alias_is_refused(write_yaml) -> None:
    with pytest.raises(ConfigError, match="nested deeper") as info:
        load_config(write_yaml("MODEL:\n  PIXEL_MEAN: &loop [1, *loop]\n"))
    assert info.value.key == "MODEL.PIXEL_MEAN"


def test_alias_bomb_is_refused(write_yaml) -> None:
    # Nine levels of ten aliases each: 10**9 list items once expanded, a few lines of YAML.
    bomb = "\n".join(
        ["TEST:", "  EXPECTED_RESULTS:", "  - &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
        + [f"  - &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    )
    with pytest.raises(ConfigError, match="items in all") as info:
        load_config(write_yaml(bomb + "\n"))
    assert info.value.key == "TEST.EXPECTED_RESULTS"


def test_deeply_nested_yaml_is_refused(write_yaml) -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(write_yaml("MODEL:\n  PIXEL_MEAN: " + "[" * 5000 + "]" * 5000 + "\n"))


def test_integer_too_large_for_a_float_is_refused(write_yaml) -> None:
    with pytest.raises(ConfigError, match="too large") as info:
        load_config(write_yaml("SOLVER:\n  BASE_LR: " + "9" * 400 + "\n"))
    assert info.value.key == "SOLVER.BASE_LR"
    assert len(str(info.value)) < 300

"""The model zoo's ``!!python/object/apply:eval`` anchor sizes, computed without evaluating."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from export_tools.config import ConfigError, load_config
from export_tools.config.expr import MAX_ITEMS, ExprError, evaluate
from export_tools.zoo.catalog import get_entry

# The tag exactly as Detectron2's configs/Base-RetinaNet.yaml writes it.
ZOO_TAG = ('!!python/object/apply:eval ["[[x, x * 2**(1.0/3), x * 2**(2.0/3) ] '
           'for x in [32, 64, 128, 256, 512 ]]"]')
ZOO_SOURCE = Path(os.environ.get("D2STREAM_DETECTRON2_SRC", "/work/detectron2-src"))


def _retina_file(tmp_path: Path, sizes: str) -> Path:
    base = tmp_path / "Base-RetinaNet.yaml"
    base.write_text("MODEL:\n  META_ARCHITECTURE: \"RetinaNet\"\n"
                    "  BACKBONE:\n    NAME: \"build_retinanet_resnet_fpn_backbone\"\n"
                    f"  ANCHOR_GENERATOR:\n    SIZES: {sizes}\n")
    child = tmp_path / "retinanet.yaml"
    child.write_text("_BASE_: \"Base-RetinaNet.yaml\"\nMODEL:\n  RESNETS:\n    DEPTH: 101\n")
    return child


def test_zoo_tag_gives_detectron2s_anchor_sizes(tmp_path: Path) -> None:
    cfg = load_config(_retina_file(tmp_path, ZOO_TAG))
    expected = [[x, x * 2 ** (1.0 / 3), x * 2 ** (2.0 / 3)] for x in [32, 64, 128, 256, 512]]
    assert cfg.MODEL.ANCHOR_GENERATOR.SIZES == expected
    # the catalog's flattened RetinaNet entry holds the values Detectron2 computed
    zoo = get_entry("COCO-Detection/retinanet_R_101_FPN_3x").config_tree()
    assert zoo["MODEL"]["ANCHOR_GENERATOR"]["SIZES"] == expected


@pytest.mark.skipif(not (ZOO_SOURCE / "configs" / "Base-RetinaNet.yaml").is_file(),
                    reason="Detectron2's source tree (its configs/) is not on this machine")
@pytest.mark.parametrize("name", ["retinanet_R_50_FPN_1x", "retinanet_R_50_FPN_3x",
                                  "retinanet_R_101_FPN_3x"])
def test_zoo_files_load_and_are_supported(name: str) -> None:
    from export_tools.modeling.supported import check_supported

    cfg = load_config(ZOO_SOURCE / "configs" / "COCO-Detection" / f"{name}.yaml")
    check_supported(cfg)
    assert cfg.MODEL.ANCHOR_GENERATOR.SIZES[0][1] == 32 * 2 ** (1.0 / 3)


@pytest.mark.parametrize("text, expected", [
    ("[1, -2, +3.5]", [1, -2, 3.5]),
    ("2**10 - 1", 1023),
    ("[[a, b] for a, b in [[1, 2], [3, 4]]]", [[1, 2], [3, 4]]),
    ("[x / 2 for x in range(1, 7, 2)]", [0.5, 1.5, 2.5]),
    ("(1, 2)", [1, 2]),
])
def test_accepted_subset(text: str, expected) -> None:
    assert evaluate(text) == expected


@pytest.mark.parametrize("text, words", [
    ("__import__('os').system('echo pwned')", "Call"),
    ("().__class__.__bases__", "Attribute"),
    ("open('/etc/passwd')", "Call"),
    ("[x for x in [1] if x]", "'if'"),
    ("[x for x in range(10**9)]", "more than"),
    ("[x for x in range(3) for y in range(3)]", "one 'for'"),
    ("2 ** 10000", "exponent"),
    ("9.0 ** 60 * 9.0 ** 60", "larger"),
    ("10 ** 60", "larger"),
    ("[[0] * 5]", "lists"),
    ("y", "name 'y'"),
    ("'abc'", "numbers only"),
    ("True", "numbers only"),
    ("1 // 2", "FloorDiv"),
    ("1 / 0", "division by zero"),
    ("(lambda: 1)()", "Call"),
    ("[x for x in y]", "literal list or range"),
    ("[[x for x in range(9000)] for y in range(9000)]", "more than"),
    ("x" * 2000, "longer"),
    ("[" * 200 + "]" * 200, "nested"),
    ("1 +", "valid expression"),
])
def test_everything_else_is_refused(text: str, words: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(text)
    assert words in str(info.value), str(info.value)


def test_item_budget_is_global() -> None:
    with pytest.raises(ExprError, match=str(MAX_ITEMS)):
        evaluate("[[x for x in range(100)] for y in range(200)]")


@pytest.mark.parametrize("sizes, words", [
    ('!!python/object/apply:eval ["__import__(\'os\').system(\'echo pwned\')"]', "refused"),
    ('!!python/object/apply:eval ["().__class__"]', "Attribute"),
    ("!!python/object/apply:eval [1, 2]", "one argument"),
    ("!!python/object/apply:eval {a: 1}", "one argument"),
])
def test_hostile_tag_names_file_and_key(tmp_path: Path, sizes: str, words: str) -> None:
    path = _retina_file(tmp_path, sizes)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "Base-RetinaNet.yaml" in message and "MODEL.ANCHOR_GENERATOR.SIZES" in message
    assert words in message and "\n" not in message


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['echo pwned']",
                                 "!!python/object/apply:builtins.eval ['1']",
                                 "!!python/name:eval"])
def test_other_python_tags_stay_refused(tmp_path: Path, tag: str) -> None:
    with pytest.raises(ConfigError, match="Python object tags are refused"):
        load_config(_retina_file(tmp_path, tag))


def test_no_eval_or_exec_in_the_evaluator() -> None:
    import export_tools.config.expr as expr
    import export_tools.config.yaml_tags as tags

    for module in (expr, tags):
        source = Path(module.__file__).read_text()
        assert not re.search(r"\b(eval|exec|compile|__import__)\(", source)

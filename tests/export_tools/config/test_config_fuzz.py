"""Property tests: whatever a YAML file or an opts list holds, loading fails only with
ConfigError, and a config that loads can be checked and dumped without other exceptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cfg_helpers import flatten
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from export_tools.config import ConfigError, load_config
from export_tools.config.defaults import DEFAULTS
from export_tools.modeling.supported import check_supported

DOTTED_KEYS = sorted(flatten(DEFAULTS))
KEY_NAMES = sorted({part for key in DOTTED_KEYS for part in key.split(".")} | {"_BASE_"})

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from(["(1, 2)", "[[1], [2]]", "1e-4", "None", "True", "RGB", "", "GN", "{a: 1}"]),
)
KEYS = st.one_of(st.sampled_from(KEY_NAMES), TEXT, st.integers(), st.none(), st.booleans())
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=5)
    ),
    max_leaves=20,
)

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _nest(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Real dotted keys with random values, as a nested mapping (later keys win)."""
    tree: dict[str, Any] = {}
    for dotted, value in pairs:
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            node = node.setdefault(part, {}) if isinstance(child, dict) or child is None else {}
        node[leaf] = value
    return tree


REAL_SHAPED = st.lists(
    st.tuples(st.sampled_from(DOTTED_KEYS), VALUES), max_size=8
).map(_nest)
ANY_MAPPING = st.dictionaries(KEYS, VALUES, max_size=6)


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _load_and_use(path: Path, opts: list[str] | None = None) -> None:
    try:
        cfg = load_config(path, opts)
    except ConfigError as exc:
        assert str(exc)
        return
    try:
        check_supported(cfg)
    except ConfigError as exc:
        assert exc.key
    assert isinstance(cfg.dump(), str)
    assert cfg.to_dict().keys() == DEFAULTS.keys()


@SETTINGS
@given(data=st.one_of(REAL_SHAPED, ANY_MAPPING))
def test_random_mappings_fail_only_with_config_error(work_dir: Path, data: dict) -> None:
    path = work_dir / "mapping.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    _load_and_use(path)


@SETTINGS
@given(text=st.text(max_size=300))
def test_random_text_fails_only_with_config_error(work_dir: Path, text: str) -> None:
    path = work_dir / "text.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    _load_and_use(path)


OPT_KEYS = st.one_of(st.sampled_from(DOTTED_KEYS), st.sampled_from(KEY_NAMES), TEXT)
OPT_VALUES = st.one_of(TEXT, SCALARS.map(lambda v: yaml.safe_dump(v).strip()))


@SETTINGS
@given(opts=st.lists(st.one_of(OPT_KEYS, OPT_VALUES), max_size=8))
def test_random_opts_fail_only_with_config_error(work_dir: Path, opts: list[str]) -> None:
    path = work_dir / "base.yaml"
    if not path.exists():
        path.write_text("VERSION: 2\n", encoding="utf-8")
    _load_and_use(path, opts)

"""Write a LazyConfig tree (with its markers) as the ``config.yaml`` ``LazyConfig.save`` writes.

The inverse of :mod:`export_tools.lazy.reader` for the markers it makes: a :class:`NameRef` or
a :class:`LambdaRef` of unknown body becomes ``!!python/name:NAME ''``, a :class:`ShapeSpecValue`
``!!python/object:detectron2.layers.ShapeSpec {...}``, a :class:`PartialValue`
``!!python/object/apply:functools.partial {args: [func, ...], kwargs: {...}}``. Reading the text
back with :func:`~export_tools.lazy.reader.read_lazy_yaml` gives the same tree. Used by the zoo
(its LazyConfig entries are stored as trees) so that ``d2stream export --config-file`` can
reproduce a zoo export from the file written beside the weights. A lambda whose body a ``.py``
config showed to be a norm (``LambdaRef.norm``) is written as that norm's ``get_norm`` name
(``naiveSyncBN_N`` for ``lambda c: NaiveSyncBatchNorm(c, stats_mode="N")``): the same layer for
Detectron2, and a file that says which norm it is (``LazyConfig.save`` would lose the body).
"""

from __future__ import annotations

from typing import Any

import yaml

from export_tools.lazy.markers import LambdaRef, NameRef, PartialValue, ShapeSpecValue
from export_tools.lazy.reader import PY

SHAPE_SPEC_TAG = PY + "object:detectron2.layers.ShapeSpec"
PARTIAL_TAG = PY + "object/apply:functools.partial"


class _LazyDumper(yaml.SafeDumper):
    """SafeDumper plus the four marker types; no anchors (every node is written out)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _name(dumper: yaml.SafeDumper, ref: NameRef | LambdaRef) -> yaml.Node:
    return dumper.represent_scalar(PY + "name:" + ref.name, "")


def _lambda(dumper: yaml.SafeDumper, ref: LambdaRef) -> yaml.Node:
    return dumper.represent_str(ref.norm) if ref.norm else _name(dumper, ref)


def _shape_spec(dumper: yaml.SafeDumper, spec: ShapeSpecValue) -> yaml.Node:
    return dumper.represent_mapping(SHAPE_SPEC_TAG, spec.fields, flow_style=True)


def _partial(dumper: yaml.SafeDumper, value: PartialValue) -> yaml.Node:
    return dumper.represent_mapping(PARTIAL_TAG, {"args": [value.func, *value.args],
                                                  "kwargs": value.kwargs})


_LazyDumper.add_representer(NameRef, _name)
_LazyDumper.add_representer(LambdaRef, _lambda)
_LazyDumper.add_representer(ShapeSpecValue, _shape_spec)
_LazyDumper.add_representer(PartialValue, _partial)


def dump_lazy_yaml(tree: dict[str, Any]) -> str:
    """YAML text of ``tree`` that :func:`~export_tools.lazy.reader.read_lazy_yaml` reads back."""
    return yaml.dump(tree, Dumper=_LazyDumper, sort_keys=True, default_flow_style=None,
                     width=100)

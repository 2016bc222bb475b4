"""The norm a LazyConfig ``.py`` lambda makes, read from its body (never run).

Detectron2's ``get_norm(norm, channels)`` takes a name or a callable of the channel count; configs
pass ``conv_norm=lambda c: NaiveSyncBatchNorm(c, stats_mode="N")``. A lambda of one parameter whose
body calls one of the norm classes below with that parameter as its channel count, and with every
other argument either training-only or at the value ``get_norm``'s own layer uses, is the layer
``get_norm`` builds for the returned name: e.g. ``lambda c: nn.GroupNorm(32, c)`` is ``"GN"``. Any
other lambda is recorded with why it is not, and refused where a norm is read (by key path).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from export_tools.errors import ConfigError
from export_tools.lazy.markers import LambdaRef, NameRef

_BN_PARAMS = ("num_features", "eps", "momentum", "affine", "track_running_stats")
_BN_FIXED: dict[str, Any] = {"eps": 1e-5, "affine": True, "track_running_stats": True}


@dataclass(frozen=True)
class _NormClass:
    """A norm class's constructor: what ``get_norm`` name it is, and its arguments."""

    norm: str
    params: tuple[str, ...]  # positional order
    channels: str  # the parameter that takes the channel count
    fixed: Mapping[str, Any] = field(default_factory=dict)  # inference differs at other values
    free: tuple[str, ...] = ()  # training-only arguments: any value
    variants: Mapping[tuple[str, Any], str] = field(default_factory=dict)  # (arg, value) -> name
    required: tuple[str, ...] = ()  # fixed arguments without a default


_BN = _NormClass("BN", _BN_PARAMS, "num_features", _BN_FIXED, ("momentum",))
_NAIVE = _NormClass("naiveSyncBN", _BN_PARAMS, "num_features",
                    {**_BN_FIXED, "stats_mode": ("", "N")}, ("momentum",),
                    {("stats_mode", "N"): "naiveSyncBN_N"})
_SYNC = _NormClass("nnSyncBN", (*_BN_PARAMS, "process_group"), "num_features", _BN_FIXED,
                   ("momentum", "process_group"))
_FROZEN = _NormClass("FrozenBN", ("num_features", "eps"), "num_features", {"eps": 1e-5})
_LN = _NormClass("LN", ("normalized_shape", "eps"), "normalized_shape", {"eps": 1e-6})
_GN = _NormClass("GN", ("num_groups", "num_channels", "eps", "affine"), "num_channels",
                 {"num_groups": 32, "eps": 1e-5, "affine": True}, required=("num_groups",))

#: each norm class by every module path a config may import it from
NORM_CLASSES: dict[str, _NormClass] = {
    "detectron2.layers.NaiveSyncBatchNorm": _NAIVE,
    "detectron2.layers.batch_norm.NaiveSyncBatchNorm": _NAIVE,
    "detectron2.layers.BatchNorm2d": _BN,
    "detectron2.layers.wrappers.BatchNorm2d": _BN,
    "torch.nn.BatchNorm2d": _BN,
    "torch.nn.modules.batchnorm.BatchNorm2d": _BN,
    "torch.nn.SyncBatchNorm": _SYNC,
    "torch.nn.modules.batchnorm.SyncBatchNorm": _SYNC,
    "detectron2.layers.FrozenBatchNorm2d": _FROZEN,
    "detectron2.layers.batch_norm.FrozenBatchNorm2d": _FROZEN,
    "detectron2.layers.batch_norm.LayerNorm": _LN,
    "torch.nn.GroupNorm": _GN,
    "torch.nn.modules.normalization.GroupNorm": _GN,
}
#: what a refusal lists as read
SUPPORTED = ("lambda c: X(c, ...) with X one of NaiveSyncBatchNorm, BatchNorm2d, nn.SyncBatchNorm, "
             "FrozenBatchNorm2d, detectron2.layers.batch_norm.LayerNorm, or nn.GroupNorm(32, c)")
#: get_norm names of one layer at inference -> the name the exporter builds
SAME_NORMS = {"naiveSyncBN_N": "naiveSyncBN"}  # stats_mode "N" only changes training
_CHANNELS = object()  # the lambda's parameter, as an argument


class _NotANorm(Exception):
    """Why a lambda's body is not one of the norms."""


def unread_lambda(value: LambdaRef, why: str) -> str:
    """The refusal of a lambda whose norm is not known (``why``: the reason)."""
    return (f"is a lambda ({value.name}) that is not a norm this exporter reads: {why}; "
            f"supported: {SUPPORTED}")


def read_lambda(node: ast.Lambda, name: str, resolve: Callable[[ast.expr], Any]) -> LambdaRef:
    """The :class:`LambdaRef` of ``node``; ``resolve`` evaluates a name in the config's scope."""
    text = f"line {node.lineno}: {ast.unparse(node)}"
    try:
        return LambdaRef(name, norm=_norm_of(node, resolve))
    except _NotANorm as exc:
        return LambdaRef(name, refusal=f"{text}: {exc}")


def _norm_of(node: ast.Lambda, resolve: Callable[[ast.expr], Any]) -> str:
    args = node.args
    if len(args.args) != 1 or args.posonlyargs or args.vararg or args.kwonlyargs or \
            args.kwarg or args.defaults:
        raise _NotANorm("not a lambda of one parameter (the channel count)")
    param = args.args[0].arg
    call = node.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, (ast.Name, ast.Attribute)):
        raise _NotANorm("its body is not a call of a norm class")
    try:
        func = resolve(call.func)
    except ConfigError:
        func = None
    cls = NORM_CLASSES.get(func.name) if isinstance(func, NameRef) else None
    if cls is None:
        raise _NotANorm(f"{ast.unparse(call.func)} is not a known norm class")
    bound = _bind(cls, call, param)
    if bound.get(cls.channels) is not _CHANNELS:
        raise _NotANorm(f"its parameter {param!r} is not passed as {cls.channels}")
    norm = cls.norm
    for key, value in bound.items():
        if key == cls.channels or key in cls.free:
            continue
        _check_fixed(cls, key, value)
        norm = cls.variants.get((key, value), norm)
    missing = [k for k in cls.required if k not in bound]
    if missing:
        raise _NotANorm(f"{', '.join(missing)} must be given")
    return norm


def _bind(cls: _NormClass, call: ast.Call, param: str) -> dict[str, Any]:
    """The call's arguments by parameter name; the lambda's parameter as ``_CHANNELS``."""
    if len(call.args) > len(cls.params):
        raise _NotANorm(f"too many positional arguments for {cls.params}")
    bound: dict[str, Any] = {}
    pairs = [(cls.params[i], a) for i, a in enumerate(call.args)]
    for kw in call.keywords:
        if kw.arg is None:
            raise _NotANorm("**kwargs are not read")
        pairs.append((kw.arg, kw.value))
    for key, expr in pairs:
        if key in bound:
            raise _NotANorm(f"{key} given twice")
        bound[key] = _argument(expr, param)
    return bound


def _argument(expr: ast.expr, param: str) -> Any:
    if isinstance(expr, ast.Name) and expr.id == param:
        return _CHANNELS
    try:
        return ast.literal_eval(expr)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise _NotANorm(f"argument {ast.unparse(expr)} is neither {param!r} nor a "
                        "literal") from None


def _check_fixed(cls: _NormClass, key: str, value: Any) -> None:
    if key not in cls.fixed:
        known = [k for k in (*cls.fixed, *cls.free) if k != cls.channels]
        raise _NotANorm(f"argument {key}={value!r} is not read; the arguments read: "
                        f"{', '.join(known)}")
    want = cls.fixed[key]
    allowed = want if isinstance(want, tuple) else (want,)
    if not any(_same(value, a) for a in allowed):
        listed = " or ".join(repr(a) for a in allowed)
        raise _NotANorm(f"{key}={value!r}: supported: {listed} (what get_norm's "
                        f"{cls.norm!r} layer uses)")


def _same(value: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(value, bool):
        return value is want
    if isinstance(want, (int, float)):
        return isinstance(value, (int, float)) and abs(value - want) <= 1e-12 * max(1, abs(want))
    return bool(value == want)

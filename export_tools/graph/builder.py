"""Graph construction: unique names, constants, nodes, and shape helpers.

Only the standard ONNX domain is used (pinned ``OPSET`` and ``IR_VERSION``), so that the result
runs in ONNX Runtime, OpenVINO or any other conforming backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8

Tensor = str  # a value name in the graph

_NP_TO_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.bool_): TensorProto.BOOL,
    np.dtype(np.uint8): TensorProto.UINT8,
}


class GraphBuilder:
    """Accumulates nodes and initializers; every value gets a unique, readable name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._counts: dict[str, int] = {}
        self._scope: list[str] = []
        self._const_cache: dict[tuple[str, bytes, tuple[int, ...]], str] = {}
        self._memo: dict[tuple, Tensor] = {}
        self._named: dict[str, str] = {}

    # ----------------------------------------------------------------- naming
    def unique(self, hint: str) -> str:
        base = "/".join([*self._scope, hint]) if self._scope else hint
        n = self._counts.get(base, 0)
        self._counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def scope(self, name: str) -> _Scope:
        """Context manager that prefixes value names (e.g. ``backbone/res2``)."""
        return _Scope(self, name)

    # ---------------------------------------------------------------- values
    def add_input(self, name: str, elem_type: int, shape: Sequence[int | str | None]) -> Tensor:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def add_output(self, value: Tensor, name: str, elem_type: int, shape: Sequence[Any]) -> None:
        self.op("Identity", [value], out_names=[name])
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))

    def const(self, value: Any, hint: str = "const", dtype: Any = None) -> Tensor:
        """An initializer; identical small constants are shared."""
        arr = np.asarray(value, dtype=dtype)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        if arr.dtype not in _NP_TO_ONNX:
            raise TypeError(f"unsupported constant dtype {arr.dtype} for {hint}")
        arr = np.ascontiguousarray(arr) if arr.ndim else arr  # (ascontiguousarray makes 0-d 1-d)
        key = (str(arr.dtype), arr.tobytes(), arr.shape) if arr.size <= 16 else None
        if key is not None and key in self._const_cache:
            return self._const_cache[key]
        name = self.unique(hint)
        self.initializers.append(numpy_helper.from_array(arr, name))
        if key is not None:
            self._const_cache[key] = name
        return name

    def named_const(self, key: str, make: Any, hint: str) -> Tensor:
        """An initializer created once per ``key`` (weights shared by several uses, e.g. levels)."""
        if key not in self._named:
            self._named[key] = self.const(make(), hint)
        return self._named[key]

    def i64(self, values: Sequence[int] | int, hint: str = "i64") -> Tensor:
        return self.const(np.asarray(values, dtype=np.int64), hint)

    def f32(self, values: Sequence[float] | float, hint: str = "f32") -> Tensor:
        return self.const(np.asarray(values, dtype=np.float32), hint)

    # ----------------------------------------------------------------- nodes
    def op(
        self,
        op_type: str,
        inputs: Sequence[Tensor | None],
        n_out: int = 1,
        hint: str | None = None,
        out_names: Sequence[str] | None = None,
        **attrs: Any,
    ) -> Any:
        """Add one standard-domain node; returns its output name (or a list when ``n_out > 1``)."""
        hint = hint or op_type.lower()
        outs = list(out_names) if out_names else [self.unique(hint) for _ in range(n_out)]
        ins = ["" if i is None else i for i in inputs]
        node_name = self.unique(f"{hint}_node")
        self.nodes.append(helper.make_node(op_type, ins, outs, name=node_name, **attrs))
        return outs[0] if len(outs) == 1 else outs

    # ---------------------------------------------------------- shape helpers
    def shape_of(self, x: Tensor, start: int | None = None, end: int | None = None,
                 hint: str = "shape") -> Tensor:
        """``Shape(x)[start:end]`` as int64 (1-D)."""
        attrs = {}
        if start is not None:
            attrs["start"] = start
        if end is not None:
            attrs["end"] = end
        return self.op("Shape", [x], hint=hint, **attrs)

    def memo(self, key: tuple, make: Callable[[], Tensor]) -> Tensor:
        """The value built by ``make()`` the first time ``key`` is asked for, reused afterwards
        (values that several heads need, such as the clip bounds of the image)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def dim(self, x: Tensor, axis: int) -> Tensor:
        """The size of one axis of ``x`` as a 1-element int64 tensor."""
        return self.shape_of(x, axis, axis + 1)

    def reshape(self, x: Tensor, shape: Sequence[int] | Tensor, hint: str = "reshape") -> Tensor:
        s = shape if isinstance(shape, str) else self.i64(list(shape))
        return self.op("Reshape", [x, s], hint=hint)

    def unsqueeze(self, x: Tensor, axes: Sequence[int], hint: str = "unsqueeze") -> Tensor:
        return self.op("Unsqueeze", [x, self.i64(list(axes))], hint=hint)

    def squeeze(self, x: Tensor, axes: Sequence[int], hint: str = "squeeze") -> Tensor:
        return self.op("Squeeze", [x, self.i64(list(axes))], hint=hint)

    def slice(self, x: Tensor, starts: Any, ends: Any, axes: Sequence[int],
              steps: Sequence[int] | None = None, hint: str = "slice") -> Tensor:
        s = starts if isinstance(starts, str) else self.i64(list(starts))
        e = ends if isinstance(ends, str) else self.i64(list(ends))
        ins = [x, s, e, self.i64(list(axes))]
        if steps is not None:
            ins.append(self.i64(list(steps)))
        return self.op("Slice", ins, hint=hint)

    def concat(self, xs: Sequence[Tensor], axis: int, hint: str = "concat") -> Tensor:
        return xs[0] if len(xs) == 1 else self.op("Concat", list(xs), axis=axis, hint=hint)

    def gather(self, x: Tensor, idx: Tensor, axis: int = 0, hint: str = "gather") -> Tensor:
        return self.op("Gather", [x, idx], axis=axis, hint=hint)

    def cast(self, x: Tensor, to: int, hint: str = "cast") -> Tensor:
        return self.op("Cast", [x], to=to, hint=hint)

    def nonzero_1d(self, mask: Tensor, hint: str = "nonzero") -> Tensor:
        """Indices ``(M,)`` where a 1-D boolean mask is true."""
        nz = self.op("NonZero", [mask], hint=hint)
        return self.reshape(nz, [-1], hint=f"{hint}_flat")

    def topk(self, x: Tensor, k: Tensor, axis: int = -1, hint: str = "topk") -> list[Tensor]:
        """Sorted largest-first TopK; ``k`` is a 1-element int64 tensor."""
        return self.op("TopK", [x, k], n_out=2, axis=axis, largest=1, sorted=1, hint=hint)

    def min_k(self, count: Tensor, limit: int, hint: str = "k") -> Tensor:
        """``min(count, limit)`` for a 1-element int64 count."""
        return self.op("Min", [count, self.i64([limit])], hint=hint)

    # ------------------------------------------------------------------ build
    def build(self, metadata: dict[str, str] | None = None, doc: str = "") -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, self.name, self.inputs, self.outputs, initializer=self.initializers
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="d2stream",
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        return model


class _Scope:
    def __init__(self, builder: GraphBuilder, name: str) -> None:
        self.builder, self.name = builder, name

    def __enter__(self) -> GraphBuilder:
        self.builder._scope.append(self.name)
        return self.builder

    def __exit__(self, *exc: object) -> None:
        self.builder._scope.pop()

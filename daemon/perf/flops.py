"""Count a model's floating-point operations on a concrete input, from one profiled run.

ONNX Runtime's profiler records every node's input and output shapes; one run with graph
optimisations disabled (so nodes keep their ONNX types) and weight pre-packing off (so weights
stay visible as inputs) gives the shapes of every node, including the data-dependent RoI parts,
with the numbers of proposals and detections this input really produces. No ``onnx`` package is
needed, so this works on the device too.

Counted: ``Conv``, ``ConvTranspose``, ``Gemm`` and ``MatMul`` at 2 FLOPs per multiply-accumulate.
Not counted: biases, element-wise ops, pooling, normalisation, RoIAlign, NMS and selection logic.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
Shape = tuple[int, ...]


@dataclass(frozen=True)
class NodeFlops:
    name: str
    op_type: str
    flops: int
    output_shape: Shape


@dataclass
class FlopReport:
    """FLOPs of every counted node of one run."""

    nodes: list[NodeFlops] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(n.flops for n in self.nodes)

    def by_scope(self, depth: int = 1) -> dict[str, int]:
        """Totals grouped by the first ``depth`` components of the node names (``backbone``)."""
        groups: dict[str, int] = defaultdict(int)
        for n in self.nodes:
            key = "/".join(n.name.split("/")[:depth]) if "/" in n.name else "(top)"
            groups[key] += n.flops
        return dict(groups)

    def by_op(self) -> dict[str, int]:
        groups: dict[str, int] = defaultdict(int)
        for n in self.nodes:
            groups[n.op_type] += n.flops
        return dict(groups)


def node_flops(op_type: str, inputs: Sequence[Shape], output: Shape) -> int:
    """2 x multiply-accumulates of one node from its input and output shapes.

    Conv: ``out (N, Cout, ...)`` x ``weight[1:]`` (Cin/groups x kernel); ConvTranspose:
    ``x (N, Cin, ...)`` x ``weight[1:]`` (Cout/groups x kernel); Gemm: ``M x N`` x K where K is
    ``size(A) / M``; MatMul: ``prod(out)`` x ``A[-1]``.
    """
    if op_type == "Conv":
        return 2 * int(np.prod(output)) * int(np.prod(inputs[1][1:]))
    if op_type == "ConvTranspose":
        return 2 * int(np.prod(inputs[0])) * int(np.prod(inputs[1][1:]))
    if op_type == "Gemm":
        m = output[0]
        k = int(np.prod(inputs[0])) // max(m, 1)
        return 2 * int(np.prod(output)) * k
    if op_type == "MatMul":
        return 2 * int(np.prod(output)) * int(inputs[0][-1])
    raise ValueError(f"not a counted op type: {op_type}")


def count_flops(model: str | os.PathLike | bytes, feeds: Mapping[str, np.ndarray]) -> FlopReport:
    """FLOPs of ``model`` (a path or serialised bytes) on one run with ``feeds``."""
    events = profile_run(model, feeds)
    report = FlopReport()
    for e in events:
        args = e.get("args", {})
        op = args.get("op_name")
        if e.get("cat") != "Node" or op not in MAC_OPS or not e["name"].endswith("_kernel_time"):
            continue
        inputs = [_shape(s) for s in args.get("input_type_shape", [])]
        outputs = [_shape(s) for s in args.get("output_type_shape", [])]
        name = e["name"][: -len("_kernel_time")].removesuffix("_node")
        report.nodes.append(NodeFlops(name, op, node_flops(op, inputs, outputs[0]), outputs[0]))
    return report


def _shape(entry: Mapping[str, Sequence[int]]) -> Shape:
    return tuple(int(d) for d in next(iter(entry.values())))


def profile_run(model: str | os.PathLike | bytes,
                feeds: Mapping[str, np.ndarray]) -> list[dict]:
    """The profiler events of one unoptimised ONNX Runtime run."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="d2stream-flops-") as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.add_session_config_entry("session.disable_prepacking", "1")
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "profile")
        opts.log_severity_level = 3
        src = model if isinstance(model, bytes) else str(model)
        sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
        sess.run(None, dict(feeds))
        path = sess.end_profiling()
        with open(path, encoding="utf-8") as f:
            return json.load(f)

"""A small typed layer over ``onnx.helper`` for building standard-domain ONNX graphs."""

from export_tools.graph.builder import OPSET, GraphBuilder, Tensor

__all__ = ["OPSET", "GraphBuilder", "Tensor"]

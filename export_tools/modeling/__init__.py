"""Detectron2 architectures re-built as ONNX graphs, one module per concept.

Each builder reads what it needs from the config (``from_config``-style helpers) and the weights by
their checkpoint names, and passes ``ShapeSpec``-like information between stages.
"""

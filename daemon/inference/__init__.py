"""Torch-free inference on exported ONNX models: pre-processing, session, post-processing."""

from daemon.inference.instances import Instances, to_detectron2

__all__ = ["Instances", "to_detectron2"]

"""Desktop side: Detectron2 YAML config + checkpoint -> standard ONNX, no torch or detectron2."""

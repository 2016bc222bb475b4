"""Desktop side: Detectron2 YAML config + checkpoint -> standard ONNX, without torch or detectron2."""

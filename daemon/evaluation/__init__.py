"""Accuracy tools: COCO AP of an exported model, COCO results files, and parity reports against
Detectron2 (``d2stream eval``, ``d2stream verify``, ``predict --coco-results``)."""

from daemon.evaluation.coco_results import EvaluationError, instances_to_coco, write_coco_results

__all__ = ["EvaluationError", "instances_to_coco", "write_coco_results"]

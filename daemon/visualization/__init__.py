"""Drawing detections for people: annotated images, preview frames, MJPEG frames."""

from daemon.visualization.draw import draw_instances, draw_panoptic

__all__ = ["draw_instances", "draw_panoptic"]

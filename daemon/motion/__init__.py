"""Motion gating: a cheap frame-difference detector decides whether the model runs."""

from daemon.motion.detector import MotionDetector, MotionResult

__all__ = ["MotionDetector", "MotionResult"]

"""When the model runs on a camera's frame: motion gating and the ``detect.fps`` cap.

For each frame (at time ``t`` on the camera's event clock, seconds):

- at most ``detect.fps`` inferences per second, whatever happens (0: no cap);
- the first frame is always inferred;
- otherwise the model runs when motion was seen since the last inference, or while objects are
  tracked, or when ``detect.motion_timeout_s`` passed since the last inference (a periodic
  check of a still scene); with motion gating off it runs on every frame the cap allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from daemon.config.events_schema import DetectSection

_EPS = 1e-6  # rounding of frame times computed as n / fps
Reason = Literal["first", "motion", "tracking", "timeout", "always", "fps_cap", "still"]


@dataclass(frozen=True)
class Decision:
    """``infer``: run the model on this frame; ``reason``: why (or why not)."""

    infer: bool
    reason: Reason


class InferenceGate:
    """The gate of one camera (one caller at a time)."""

    def __init__(self, detect: DetectSection, motion_gating: bool = True) -> None:
        self.detect = detect
        self.motion_gating = motion_gating
        self.last_inference: float | None = None
        self._motion_pending = False

    def decide(self, t: float, motion: bool, tracking: bool) -> Decision:
        """Decide for the frame at ``t``; an ``infer`` decision counts as an inference."""
        self._motion_pending = self._motion_pending or motion
        decision = self._decision(t, tracking)
        if decision.infer:
            self.last_inference = t
            self._motion_pending = False
        return decision

    def _decision(self, t: float, tracking: bool) -> Decision:
        if self.last_inference is None:
            return Decision(True, "first")
        since = t - self.last_inference
        fps = self.detect.fps
        if fps > 0 and since < 1.0 / fps - _EPS:
            return Decision(False, "fps_cap")
        if not self.motion_gating:
            return Decision(True, "always")
        if self._motion_pending:
            return Decision(True, "motion")
        if tracking:
            return Decision(True, "tracking")
        if since >= self.detect.motion_timeout_s - _EPS:
            return Decision(True, "timeout")
        return Decision(False, "still")

"""Cheap motion detection: frame difference against a running average of a small grey image.

Per frame: downscale to ``width`` pixels wide, grey, Gaussian blur, absolute difference with the
running average, threshold, dilate, contours; the motion score is the area of the contours as a
fraction of the frame. A change over most of the frame (lights switched, camera moved, IR mode)
re-learns the background at once instead of reporting motion for a long time.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from daemon.config.events_schema import MotionSection

_KERNEL = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class MotionResult:
    """``score``: fraction of the frame that moved (0..1); ``motion``: ``score >= min_area``;
    ``reset``: the background was re-learned on this frame."""

    score: float
    motion: bool
    reset: bool = False


class MotionDetector:
    """The motion detector of one camera (not thread-safe: one caller at a time)."""

    def __init__(self, config: MotionSection) -> None:
        self.config = config
        self._average: np.ndarray | None = None
        self._size: tuple[int, int] | None = None

    def small_grey(self, image: np.ndarray) -> np.ndarray:
        """``(h, width)`` uint8: the frame downscaled (aspect kept), grey and blurred."""
        height, width = image.shape[:2]
        if self._size is None or self._size[0] != width or self._size[1] != height:
            self._size = (width, height)
            self._average = None
        out_w = min(self.config.width, width)
        out_h = max(1, round(height * out_w / width))
        small = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_AREA)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        k = self.config.blur_size
        return cv2.GaussianBlur(small, (k, k), 0) if k > 1 else small

    def detect(self, image: np.ndarray) -> MotionResult:
        """Compare ``image`` (``(H, W, 3)`` BGR or ``(H, W)`` grey) with the background and
        learn it into the background. The first frame (or one of a new size) only sets the
        background and reports no motion."""
        grey = self.small_grey(image)
        if self._average is None:
            self._average = grey.astype(np.float32)
            return MotionResult(0.0, False)
        diff = cv2.absdiff(grey, cv2.convertScaleAbs(self._average))
        _, mask = cv2.threshold(diff, self.config.threshold, 255, cv2.THRESH_BINARY)
        mask = cv2.dilate(mask, _KERNEL, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        area = sum(cv2.contourArea(c) for c in contours)
        score = min(1.0, float(area) / float(mask.size))
        if score >= self.config.reset_area:
            self._average = grey.astype(np.float32)
            return MotionResult(score, True, reset=True)
        cv2.accumulateWeighted(grey, self._average, self.config.alpha)
        return MotionResult(score, score >= self.config.min_area)

    def reset(self) -> None:
        """Forget the background (the next frame sets it again)."""
        self._average = None

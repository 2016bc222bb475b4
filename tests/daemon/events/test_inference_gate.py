"""When the model runs: table-driven sequences of frames (time, motion, tracked objects)."""

from __future__ import annotations

import pytest

from daemon.config.events_schema import DetectSection
from daemon.events.gate import InferenceGate

# Each step: (t seconds, motion, objects tracked, expected reason). Reasons starting a
# decision to infer: first, motion, tracking, timeout, always; to skip: fps_cap, still.
CASES = {
    "still scene: once per motion_timeout": (
        DetectSection(fps=5, motion_timeout_s=3), True,
        [(0.0, False, False, "first"), (0.1, False, False, "fps_cap"),
         (1.0, False, False, "still"), (2.9, False, False, "still"),
         (3.0, False, False, "timeout"), (3.5, False, False, "still"),
         (6.0, False, False, "timeout")]),
    "motion runs the model, capped by fps": (
        DetectSection(fps=5, motion_timeout_s=10), True,
        [(0.0, False, False, "first"), (0.1, True, False, "fps_cap"),
         (0.2, True, False, "motion"), (0.3, True, False, "fps_cap"),
         (0.4, False, False, "motion"),  # motion seen at 0.3 is still pending
         (0.6, False, False, "still")]),
    "tracked objects keep it running without motion": (
        DetectSection(fps=2, motion_timeout_s=10), True,
        [(0.0, False, False, "first"), (0.2, False, True, "fps_cap"),
         (0.5, False, True, "tracking"), (1.0, False, True, "tracking"),
         (1.5, False, False, "still")]),
    "gating off: every frame the cap allows": (
        DetectSection(fps=4, motion_timeout_s=10), False,
        [(0.0, False, False, "first"), (0.1, False, False, "fps_cap"),
         (0.25, False, False, "always"), (0.5, False, False, "always")]),
    "fps 0: no cap": (
        DetectSection(fps=0, motion_timeout_s=10), True,
        [(0.0, False, False, "first"), (0.01, True, False, "motion"),
         (0.02, True, False, "motion"), (0.03, False, False, "still")]),
    "frame times computed as n / fps are not rounded away": (
        DetectSection(fps=5, motion_timeout_s=10), True,
        [(0 / 10, True, False, "first"), (2 / 10, True, False, "motion"),
         (4 / 10, True, False, "motion"), (7 / 10, True, False, "motion"),
         (9 / 10, True, False, "motion")]),
}


@pytest.mark.parametrize("name", CASES)
def test_gate_sequences(name: str) -> None:
    detect, gating, steps = CASES[name]
    gate = InferenceGate(detect, motion_gating=gating)
    got = [gate.decide(t, motion, tracking).reason for t, motion, tracking, _ in steps]
    assert got == [step[3] for step in steps]


def test_decisions_to_infer_are_the_ones_that_count() -> None:
    gate = InferenceGate(DetectSection(fps=1, motion_timeout_s=5))
    decisions = [gate.decide(t / 10, True, False).infer for t in range(0, 31)]
    assert [i for i, run in enumerate(decisions) if run] == [0, 10, 20, 30]

"""Bad zones and labels through the CLI: one line naming the key, exit 78 (EX_CONFIG)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.daemon_helpers import daemon_config, run_cli, write_yaml


def camera(video: Path, **extra: object) -> list[dict]:
    return [{"name": "cam", "source": {"type": "opencv", "url": str(video)}, **extra}]


@pytest.mark.parametrize(("command", "extra", "sections", "expected"), [
    ("check-config", {"zones": {"door": {"coordinates": [[0, 0], [9, 9], [9, 0], [0, 9]]}}}, {},
     "cameras[0].zones.door.coordinates: edges 0-1 and 2-3 cross (self-intersecting outline)"),
    ("check-config", {}, {"events": {"required_zones": ["door"]}},
     "events.required_zones: zone 'door' is not defined for camera 'cam' (its zones: none)"),
    # labels are checked against the model's classes once it is loaded
    ("run", {"zones": {"door": {"coordinates": [[0, 0], [1, 0], [1, 1]], "labels": ["dog"]}}},
     {}, "cameras[0].zones.door.labels: 'dog' is not a class of model "
         "'mask_rcnn_R_50_FPN_demo' (classes: square, circle, triangle)"),
])
def test_bad_event_settings_name_the_key(command: str, extra: dict, sections: dict,
                                         expected: str, tmp_path: Path, demo_model: Path,
                                         demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(12)
    config = write_yaml(tmp_path / "bad.yaml",
                        daemon_config(demo_model, video, cameras=camera(video, **extra),
                                      **sections))
    args = [command, config] if command == "check-config" else [command, "--config", config]
    proc = run_cli(*args, cwd=tmp_path, timeout=180)
    assert proc.returncode == 78, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if str(config) in line]
    assert len(errors) == 1 and errors[0].endswith(f"{config}: {expected}"), proc.stderr
    assert "Traceback" not in proc.stderr

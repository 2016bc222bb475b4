"""Config of detect/motion/events/tracking/zones: defaults, per-camera overlays, and errors that
name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import EXIT_CONFIG, ConfigError, parse_config
from daemon.config.events_checks import check_labels


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    (tmp_path / "clip.mp4").write_bytes(b"video")
    return tmp_path


def config_text(top: str = "", camera: str = "") -> str:
    indented = "".join(f"    {line}\n" for line in camera.splitlines())
    return ("model: {path: m.onnx, min_score: 0.4}\n"
            "cameras:\n  - name: front\n    source: {type: opencv, url: clip.mp4}\n"
            f"{indented}{top}\n")


def error_of(text: str, base: Path) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, name="c.yaml", base_dir=base, env={})
    assert info.value.exit_code == EXIT_CONFIG and "\n" not in str(info.value)
    return str(info.value)


def test_defaults(base: Path) -> None:
    cfg = parse_config(config_text(), base_dir=base, env={})
    settings = cfg.camera_settings(cfg.cameras[0])
    assert settings.detect.fps == 5 and settings.detect.motion_timeout_s == 10
    assert settings.motion.enabled and settings.motion.width == 160
    assert settings.events.threshold == 0.7 and settings.events.end_after_s == 5
    assert settings.zones == {} and cfg.tracking.iou_threshold == 0.3


def test_camera_sections_override_the_top_level_key_by_key(base: Path) -> None:
    text = config_text(
        top=("detect: {fps: 2, motion_timeout_s: 30}\nmotion: {threshold: 40}\n"
             "events:\n  min_score: 0.6\n  labels: [car]\n"
             "  filters: {person: {threshold: 0.9, min_area: 500}, car: {min_score: 0.7}}\n"),
        camera=("detect: {fps: 1}\nmotion: {enabled: false}\n"
                "events:\n  threshold: 0.8\n  filters: {person: {min_area: 0.01}}\n"))
    cfg = parse_config(text, base_dir=base, env={})
    s = cfg.camera_settings(cfg.cameras[0])
    assert (s.detect.fps, s.detect.motion_timeout_s) == (1, 30)
    assert (s.motion.enabled, s.motion.threshold) == (False, 40)
    assert s.events.labels == ["car"] and s.events.min_score == 0.6
    person = s.events.filter_for("person")
    assert (person.threshold, person.min_area, person.min_score) == (0.9, 0.01, 0.6)
    car = s.events.filter_for("car")
    assert (car.min_score, car.threshold) == (0.7, 0.8)
    assert s.events.filter_for("bus").threshold == 0.8  # no filter: the camera's default


@pytest.mark.parametrize(("top", "camera", "expected"), [
    ("", "zones:\n  door: {coordinates: [[0, 0], [10, 0]]}",
     "c.yaml: cameras[0].zones.door.coordinates: a zone needs at least 3 points, got 2"),
    ("", "zones:\n  door: {coordinates: [[0, 0], [10, 10], [10, 0], [0, 10]]}",
     "c.yaml: cameras[0].zones.door.coordinates: edges 0-1 and 2-3 cross"),
    ("", "zones:\n  door: {coordinates: '0,0,10'}",
     "c.yaml: cameras[0].zones.door.coordinates: an odd number of values"),
    ("", "zones:\n  door: {labels: [car]}",
     "c.yaml: cameras[0].zones.door.coordinates: field required"),
    ("", "zones:\n  door: {coordinates: [[0, 0], [1, 0], [1, 1]], colour: red}",
     "c.yaml: cameras[0].zones.door.colour: unknown key"),
    ("", "zones:\n  'front door': {coordinates: [[0, 0], [1, 0], [1, 1]]}",
     "c.yaml: cameras[0].zones.front door.[key]: string should match pattern"),
    ("events: {required_zones: [door]}", "",
     "c.yaml: events.required_zones: zone 'door' is not defined for camera 'front' "
     "(its zones: none)"),
    ("", "events: {required_zones: [gate]}\n"
         "zones:\n  door: {coordinates: [[0, 0], [1, 0], [1, 1]]}",
     "c.yaml: cameras[0].events.required_zones: zone 'gate' is not defined for camera 'front' "
     "(its zones: door)"),
    ("events: {min_score: 0.3}", "", "c.yaml: events.min_score: 0.3 is below model.min_score"),
    ("", "events: {min_score: 0.3}",
     "c.yaml: cameras[0].events.min_score: 0.3 is below model.min_score"),
    ("events: {filters: {car: {min_score: 0.2}}}", "",
     "c.yaml: events.filters.car.min_score: 0.2 is below model.min_score"),
    ("", "events: {filters: {car: {min_score: 0.2}}}",
     "c.yaml: cameras[0].events.filters.car.min_score: 0.2 is below model.min_score"),
    ("events: {min_area: 0.5, max_area: 0.1}", "",
     "c.yaml: events.min_area: min_area 0.5 is above max_area 0.1"),
    ("events: {filters: {car: {min_area: 900, max_area: 800}}}", "",
     "c.yaml: events.filters.car.min_area: min_area 900 is above max_area 800"),
    ("motion: {blur_size: 4}", "", "c.yaml: motion.blur_size: the blur kernel size must be odd"),
    ("detect: {fps: -1}", "", "c.yaml: detect.fps: input should be greater than or equal to 0"),
    ("events: {score_window: 0}", "", "c.yaml: events.score_window: input should be greater"),
    ("tracking: {iou: 0.3}", "", "c.yaml: tracking.iou: unknown key"),
])
def test_errors_name_the_key(base: Path, top: str, camera: str, expected: str) -> None:
    assert error_of(config_text(top, camera), base).startswith(expected)


def test_area_ranges_in_different_units_are_not_compared(base: Path) -> None:
    text = config_text("events: {min_area: 400, max_area: 0.5}")
    assert parse_config(text, base_dir=base, env={}).events.min_area == 400


def test_labels_must_be_classes_of_the_model(base: Path) -> None:
    text = config_text(camera=("events: {filters: {dog: {threshold: 0.9}}}\n"
                               "zones:\n  door: {coordinates: [[0, 0], [1, 0], [1, 1]], "
                               "labels: [cat]}"))
    cfg = parse_config(text, base_dir=base, env={})
    with pytest.raises(ConfigError) as info:
        check_labels(cfg, ["person", "car", "cat"], "coco")
    assert str(info.value) == ("cameras[0].events.filters: 'dog' is not a class of model 'coco' "
                               "(classes: person, car, cat)")
    cfg = parse_config(config_text("events: {labels: [person, horse]}"), base_dir=base, env={})
    with pytest.raises(ConfigError, match=r"^events.labels: 'horse' is not a class"):
        check_labels(cfg, ["person", "car"], "coco")

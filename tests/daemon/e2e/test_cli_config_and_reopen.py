"""``d2stream check-config`` / ``run`` on bad configs (one line naming the key, exit 78), the
repository's config.yaml, and a network camera that hangs up mid-stream being reopened."""

from __future__ import annotations

import json
import shutil
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.daemon.daemon_helpers import (
    REPO_ROOT,
    DaemonProcess,
    daemon_config,
    free_port,
    read_jsonl,
    run_cli,
    subprocess_env,
    wait_until,
    write_yaml,
)
from tests.daemon.mjpeg_server import MjpegCamera

BAD_CONFIGS = {
    "unknown key": ({"outputs": {"event_log": {"rotate_bytes": 100}}},
                    "outputs.event_log.rotate_bytes: unknown key"),
    "wrong type": ({"outputs": {"http": {"enabled": True, "port": "eighty"}}},
                   "outputs.http.port: input should be a valid integer"),
    "missing model file": ({"model": {"path": "models/absent.onnx"}},
                           "model.path: model file not found: "),
    "bad camera spec": ({"cameras": [{"name": "cam", "source": {"type": "usb", "url": 0}}]},
                        "cameras[0].source.type: unknown source type 'usb'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
@pytest.mark.parametrize("command", ["check-config", "run"])
def test_invalid_config_is_one_line_naming_the_key(case: str, command: str, tmp_path: Path,
                                                   demo_model: Path, demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(12)
    sections, expected = BAD_CONFIGS[case]
    config = write_yaml(tmp_path / "bad.yaml", daemon_config(demo_model, video, **sections))
    args = [command, str(config)] if command == "check-config" else [command, "--config",
                                                                      str(config)]
    proc = run_cli(*args, cwd=tmp_path, timeout=120)
    assert proc.returncode == 78, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{config}: {expected}" in lines[0]
    assert not (tmp_path / "events.jsonl").exists()  # nothing was started


def test_camera_that_cannot_open_at_start_is_a_clear_error(tmp_path: Path, demo_model: Path,
                                                           demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(12)
    url = f"http://127.0.0.1:{free_port()}/cam.mjpg"
    config = daemon_config(demo_model, video, cameras=[{
        "name": "door", "source": {"type": "opencv", "url": url, "open_timeout_s": 2}}])
    proc = run_cli("run", "--config", str(write_yaml(tmp_path / "c.yaml", config)),
                    cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [f"ERROR daemon.run: camera 'door': cannot open stream '{url}'"]


@pytest.fixture()
def repo_config_dir(tmp_path: Path, demo_model: Path, demo_video) -> Path:  # noqa: ANN001
    """config.yaml copied beside the files it names (models/demo.onnx, var/demo.mp4)."""
    shutil.copy(REPO_ROOT / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "demo.onnx").symlink_to(demo_model)
    (tmp_path / "var").mkdir()
    video, _ = demo_video(20)
    shutil.copy(video, tmp_path / "var" / "demo.mp4")
    return tmp_path


def test_repository_config_checks_and_runs(repo_config_dir: Path) -> None:
    proc = run_cli("check-config", str(repo_config_dir / "config.yaml"), cwd=repo_config_dir)
    assert proc.returncode == 0, proc.stderr
    assert "OK; model" in proc.stdout and "demo (opencv)" in proc.stdout
    env = subprocess_env({"D2STREAM_HTTP_PORT": str(free_port())})
    daemon = DaemonProcess(repo_config_dir / "config.yaml", repo_config_dir, env=env)
    assert daemon.wait(120) == 0, daemon.stderr()  # the demo video ends: the run ends
    events = read_jsonl(repo_config_dir / "var" / "events.jsonl")
    assert events and list((repo_config_dir / "var" / "snapshots" / "demo").glob("*.jpg"))


def camera_health(port: int, camera: str) -> dict:
    """The camera's part of the daemon's ``/healthz``; ``{}`` while it does not answer (a
    loaded machine can be slow to reply: that is waited out, not an error)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as reply:
            return json.loads(reply.read())["cameras"][camera]
    except (OSError, ValueError, KeyError):
        return {}


# Deadlines for a loaded 2-core CI machine: conditions are waited on, so these only bound a
# failure. The stop deadline is the daemon's service.stop_timeout_s (20 s in daemon_config) for
# each of its stages in turn, plus the time a loaded machine needs to start Python and exit.
REOPEN_S = 240
STOP_S = 120


def test_stream_that_fails_mid_stream_is_reopened(tmp_path: Path, demo_model: Path,
                                                  demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(12)
    port = free_port()
    with MjpegCamera(per_connection=10, fps=10) as camera:
        config = daemon_config(demo_model, video, cameras=[{
            "name": "door", "source": {"type": "opencv", "url": camera.url,
                                       "open_timeout_s": 5, "read_timeout_s": 5},
            "reopen": {"initial_delay_s": 0.2, "max_delay_s": 1}}],
            outputs={"http": {"enabled": True, "port": port}})
        daemon = DaemonProcess(write_yaml(tmp_path / "c.yaml", config), tmp_path)
        try:
            reopened = wait_until(lambda: daemon.proc.poll() is not None or (
                (h := camera_health(port, "door")).get("reopens", 0) >= 2 and h), REOPEN_S)
            assert isinstance(reopened, dict), daemon.stderr()
            processed = reopened["processed"]
            # frames inferred after the second reopening: the reopened stream is used
            assert wait_until(lambda: daemon.proc.poll() is not None or camera_health(
                port, "door").get("processed", 0) > processed, REOPEN_S)
            assert daemon.proc.poll() is None, daemon.stderr()
        finally:
            returncode = daemon.terminate(STOP_S)
    assert returncode == 0, daemon.stderr()
    stderr = daemon.stderr()
    assert "camera 'door': no frame from stream" in stderr and "reopened" in stderr
    assert camera.connections >= 3
    frames = {e["after"]["frame"] for e in read_jsonl(tmp_path / "events.jsonl")}
    assert max(frames) >= 10  # frames after the first hang-up were inferred


def test_live_view_port_taken_is_a_retryable_error(tmp_path: Path, demo_model: Path,
                                                   demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(12)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = daemon_config(demo_model, video, outputs={"http": {"enabled": True,
                                                                     "port": port}})
        proc = run_cli("run", "--config", write_yaml(tmp_path / "c.yaml", config), cwd=tmp_path)
    assert proc.returncode == 1  # not 78: systemd tries again once the port is free
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [f"ERROR daemon.run: outputs.http.port: cannot listen on 127.0.0.1:{port}: "
                      "Address already in use"]

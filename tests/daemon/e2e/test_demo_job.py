"""The main job (``make run`` = ``.ci/demo.sh``) stays up until Ctrl-C: it loops the demo video,
says so, and prints the live-view URL only once the server answers on it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import require_fixtures
from tests.daemon.daemon_helpers import REPO_ROOT, free_port, run_cli, subprocess_env, wait_until

VIDEO_FRAMES = 20  # 2 s at 10 fps: the job must run well past the end of it
START_S = 300  # predict on the fixture images + model load, on a loaded 2-core machine
LOOP_S = 240


def checkout_copy(dst: Path, demo_model: Path) -> Path:
    """What demo.sh needs of the repository, with the demo model already exported (the export
    itself is tested elsewhere) so the job starts at its prediction step."""
    for name in ("daemon", "export_tools", ".ci"):
        shutil.copytree(REPO_ROOT / name, dst / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "config.yaml", dst / "config.yaml")
    (dst / "models").mkdir()
    (dst / "models" / "demo.onnx").symlink_to(demo_model)
    return dst


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.status, reply.headers.get("Content-Type", ""), reply.read()


def captured(port: int) -> int:
    try:
        return int(json.loads(get(f"http://127.0.0.1:{port}/healthz")[2])
                   ["cameras"]["demo"]["captured"])
    except (OSError, ValueError, KeyError):
        return 0


def test_demo_job_stays_up_until_ctrl_c(tmp_path: Path, demo_model: Path) -> None:
    repo = checkout_copy(tmp_path / "repo", demo_model)
    (repo / "var").mkdir()
    made = run_cli("demo-video", repo / "var" / "demo.mp4", "--frames", VIDEO_FRAMES,
                   cwd=repo)
    assert made.returncode == 0, made.stderr
    port = free_port()
    env = subprocess_env({"D2STREAM_HTTP_PORT": str(port), "D2STREAM_DEMO_VIDEO": "1"})
    env.pop("D2STREAM_CAMERA", None)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        job = subprocess.Popen(["bash", ".ci/demo.sh", sys.executable, str(require_fixtures())],
                               cwd=repo, env=env, stdout=stdout, stderr=stderr,
                               start_new_session=True)

    def console() -> str:
        return out.read_text(errors="replace") + err.read_text(errors="replace")

    url = f"http://127.0.0.1:{port}/"
    try:
        announced = wait_until(lambda: f"live view: {url}" in out.read_text()
                               or job.poll() is not None, START_S)
        assert announced and job.poll() is None, console()
        status, kind, page = get(url)  # at once: the URL is printed only once it is served
        assert status == 200 and kind.startswith("text/html") and page, console()
        text = console()
        assert "in a loop" in text and "until Ctrl-C" in text
        assert "small test model trained on synthetic shapes" in text
        assert "zoo:COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x" in text
        assert re.search(r"live view: ", out.read_text()) and out.read_text().count(url) == 1
        # past the end of the video, twice over: still up, still serving
        assert wait_until(lambda: captured(port) > 2 * VIDEO_FRAMES or job.poll() is not None,
                          LOOP_S) and job.poll() is None, console()
        assert get(url)[0] == 200
        job.send_signal(signal.SIGINT)  # Ctrl-C
        assert job.wait(120) == 0, console()
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(10)
    assert "every source has ended" not in console()

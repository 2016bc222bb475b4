"""The daemon works inside the sandbox of systemd/d2stream.service, and the sandbox is real.

Without a running systemd, ``tests.daemon.service.sandbox`` loads the seccomp filters the unit
asks for (its syscall allow list minus ``@privileged``, W^X memory, socket families) with
libseccomp, then execs the command: ``d2stream predict`` gives the same detections as outside,
``d2stream run`` (worker process, shared memory, HTTP, MQTT, event log, snapshots) runs and
stops cleanly, and what the unit forbids fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_fixtures
from tests.daemon.daemon_helpers import (
    REPO_ROOT,
    daemon_config,
    free_port,
    looping_camera,
    read_jsonl,
    require_program,
    subprocess_env,
    write_yaml,
)
from tests.daemon.reliability.fault_helpers import PipedDaemon, health, report_figure, wait_for

UNIT = REPO_ROOT / "systemd" / "d2stream.service"
EXPOSURE_LIMIT = 1.6
SANDBOX = [sys.executable, "-m", "tests.daemon.service.sandbox", str(UNIT), "--"]

PROBE = """
import errno, mmap, os, socket
def attempt(name, call):
    try:
        call()
    except OSError as exc:
        print(name, errno.errorcode[exc.errno])
    else:
        print(name, "ok")
attempt("setuid", lambda: os.setuid(0))
attempt("chown", lambda: os.chown(".", os.getuid(), os.getgid()))
attempt("mmap_wx", lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE
                                     | mmap.PROT_EXEC))
attempt("mmap_rw", lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE))
attempt("packet_socket", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
attempt("alg_socket", lambda: socket.socket(38, socket.SOCK_SEQPACKET).close())  # AF_ALG
attempt("inet_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
attempt("unix_socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close())
attempt("chroot", lambda: os.chroot("/"))
"""


def sandboxed(*command: str, **kwargs: object) -> subprocess.CompletedProcess:
    require_program("systemd-analyze")
    return subprocess.run([*SANDBOX, *command], cwd=kwargs.pop("cwd", REPO_ROOT),
                          env=subprocess_env(), capture_output=True, text=True,
                          timeout=kwargs.pop("timeout", 300), **kwargs)  # type: ignore[arg-type]


def test_the_sandbox_refuses_what_the_unit_forbids() -> None:
    proc = sandboxed(sys.executable, "-c", PROBE)
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"sandbox: \d{3} syscalls allowed, [45] W\^X rules, \d+ socket families",
                    proc.stderr), proc.stderr
    results = dict(line.split() for line in proc.stdout.splitlines())
    assert results == {"setuid": "EPERM", "chown": "EPERM", "mmap_wx": "EPERM",
                       "mmap_rw": "ok", "packet_socket": "EAFNOSUPPORT",
                       "alg_socket": "EAFNOSUPPORT", "inet_socket": "ok",
                       "unix_socket": "ok", "chroot": "EPERM"}, proc.stdout


def test_predict_gives_the_same_detections_inside_the_sandbox(tmp_path: Path,
                                                              demo_model: Path) -> None:
    """Inside, the default backend (auto) leaves out OpenVINO, whose JIT the unit's
    MemoryDenyWriteExecute forbids, and runs ONNX Runtime: the same detections as outside."""
    from daemon.inference.backends import available_backends  # noqa: PLC0415

    image = require_fixtures() / "mask_rcnn_R_50_FPN_demo" / "image_0.png"
    command = [sys.executable, "-m", "daemon.cli.main", "predict", str(demo_model), str(image),
               "--threads", "2", "--json"]
    inside = sandboxed(*command, str(tmp_path / "inside.json"))
    assert inside.returncode == 0 and "Traceback" not in inside.stderr, inside.stderr
    if "openvino" in available_backends():
        assert "openvino not a candidate: this process may not map executable memory" \
            in inside.stderr, inside.stderr
    outside = subprocess.run([*command, str(tmp_path / "outside.json"), "--backend",
                              "onnxruntime"], cwd=REPO_ROOT,
                             env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert outside.returncode == 0, outside.stderr
    a = json.loads((tmp_path / "inside.json").read_text())
    b = json.loads((tmp_path / "outside.json").read_text())
    assert a == b and a  # bit-identical detections


def test_forced_openvino_inside_the_sandbox_is_a_one_line_error(tmp_path: Path,
                                                                demo_model: Path) -> None:
    from daemon.inference.backends import available_backends  # noqa: PLC0415

    if "openvino" not in available_backends():
        pytest.skip("openvino not installed")
    image = require_fixtures() / "mask_rcnn_R_50_FPN_demo" / "image_0.png"
    proc = sandboxed(sys.executable, "-m", "daemon.cli.main", "predict", str(demo_model),
                     str(image), "--backend", "openvino", "--json", str(tmp_path / "o.json"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "backend 'openvino' compiles its kernels at run time" in proc.stderr, proc.stderr


def test_the_daemon_runs_inside_the_sandbox(tmp_path: Path, demo_model: Path, demo_video,  # noqa: ANN001
                                            mosquitto: tuple[str, int]) -> None:
    video, _ = demo_video(20, seed=15)
    port = free_port()
    config = daemon_config(
        demo_model, video,
        cameras=[looping_camera(video)],
        outputs={"http": {"enabled": True, "port": port},
                 "snapshots": {"enabled": True, "dir": "snapshots"},
                 "mqtt": {"enabled": True, "host": mosquitto[0], "port": mosquitto[1],
                          "topic_prefix": "sandbox", "outbox": {"path": "outbox.jsonl"}}})
    require_program("systemd-analyze")
    daemon = PipedDaemon(write_yaml(tmp_path / "c.yaml", config), tmp_path, prefix=SANDBOX)
    try:
        status = wait_for(lambda: (h := health(port)).get("status") == "ok"
                          and h["faults"]["sinks"].get("mqtt", {}).get("delivered", 0) > 0
                          and h, 240, "a healthy sandboxed daemon", daemon.stderr)
        for pid in (daemon.pid, status["worker"]["pid"]):
            fields = dict(line.split(":", 1) for line in
                          Path(f"/proc/{pid}/status").read_text().splitlines())
            assert fields["Seccomp"].strip() == "2" and fields["NoNewPrivs"].strip() == "1"
            assert int(fields["Seccomp_filters"]) >= 3
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.stderr()
    stderr = daemon.stderr()
    assert "Traceback" not in stderr and "Operation not permitted" not in stderr, stderr
    assert read_jsonl(tmp_path / "events.jsonl")
    assert list((tmp_path / "snapshots" / "cam").glob("*.jpg"))


def test_exposure_score(tmp_path: Path) -> None:
    analyze = require_program("systemd-analyze")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/d2stream/venv/bin/d2stream",
                                                    "/bin/true")
    unit = tmp_path / "d2stream.service"
    unit.write_text(text, encoding="utf-8")
    proc = subprocess.run([analyze, "security", "--offline=true", str(unit)],
                          capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for d2stream.service: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    score = float(match.group(1))
    assert score <= EXPOSURE_LIMIT, proc.stdout
    report_figure("systemd_exposure_score", score)

"""docs/install.md's steps, run as written (install_steps.py says what is changed to stay in a
temporary root), then the installed service started the way its unit would: as a dedicated
non-root user, config folder read-only, file system read-only but for the state and cache
directories, under the unit's seccomp filters. The installed venv keeps Debian's numpy."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.daemon.daemon_helpers import REPO_ROOT, free_port, require_program, write_yaml
from tests.daemon.reliability.fault_helpers import health, wait_for
from tests.daemon.service.install_steps import (
    SYSTEM_PATH,
    Target,
    doc_steps,
    rewrite,
    service_command,
)

SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture()
def target() -> Iterator[Target]:
    """A temporary root others can traverse, and a fresh system user (removed afterwards)."""
    root = Path(tempfile.mkdtemp(prefix="d2s-root-", dir="/tmp"))
    root.chmod(0o755)
    user = f"d2s-test-{uuid.uuid4().hex[:6]}"
    try:
        yield Target(root, user)
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def stage_checkout(folder: Path, target: Target, model: Path, video: Path,
                   broker: tuple[str, int], http_port: int) -> None:
    """A copy of this checkout with the model and the edited config.yaml the steps install."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        source = REPO_ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    shutil.copy2(model, folder / "model.onnx")
    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["model"].update(path=str(target.path("/opt/d2stream/models/model.onnx")),
                           num_threads=2)  # the edit the doc asks for; state paths untouched
    config["cameras"][0]["source"].update(url=str(video), loop=True, realtime=True)
    outputs = config["outputs"]
    outputs["http"]["port"] = http_port
    outputs["mqtt"].update(enabled=True, host=broker[0], port=broker[1],
                           topic_prefix=f"install-{target.user}", client_id=target.user)
    config["service"]["stop_timeout_s"] = 20
    write_yaml(folder / "config.yaml", config)


def run_steps(target: Target, checkout: Path) -> dict[str, str]:
    """Every step, in order; a failing one fails the test naming it. Returns outputs by step."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = SYSTEM_PATH  # python3 is the system's, as on Raspberry Pi OS
    outputs = {}
    for step in doc_steps():
        command = rewrite(step, target)
        if command is None:
            continue
        proc = subprocess.run(["bash", "-ec", command], cwd=checkout, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"step failed: {step}\n{command}\n{proc.stdout}" \
                                     f"{proc.stderr}"
        outputs[step] = proc.stdout + proc.stderr
    return outputs


def installed_numpy(target: Target) -> str:
    python = target.path("/opt/d2stream/venv/bin/python")
    code = ("import numpy, numexpr, cv2, onnxruntime; a = numpy.arange(4.0); "
            "assert (numexpr.evaluate('2 * a') == 2 * a).all(); "
            "print(numpy.__version__, numpy.__file__, cv2.__version__, onnxruntime.__version__)")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_documented_install_runs(demo_model: Path, demo_video,  # noqa: ANN001
                                     mosquitto: tuple[str, int], target: Target) -> None:
    for program in ("systemd-analyze", "setpriv", "unshare", "useradd", "dpkg"):
        require_program(program)
    # the root's skeleton: systemd's own units (for verify --root) and /etc/systemd/system
    shutil.copytree("/lib/systemd/system", target.path("/usr/lib/systemd/system"))
    target.path("/etc/systemd/system").mkdir(parents=True)
    video, _ = demo_video(20, seed=15)
    target.path("/srv").mkdir()
    shutil.copy2(video, target.path("/srv/demo.avi"))
    checkout, port = Path(tempfile.mkdtemp(prefix="d2s-checkout-")), free_port()
    try:
        stage_checkout(checkout, target, demo_model, target.path("/srv/demo.avi"), mosquitto,
                       port)
        outputs = run_steps(target, checkout)
    finally:
        shutil.rmtree(checkout, ignore_errors=True)
    check = next(out for step, out in outputs.items() if "check-config" in step)
    state, cache = target.path("/var/lib/d2stream"), target.path("/var/cache/d2stream")
    assert f"writes outputs.journal.path: {state}/var/journal.db" in check, check
    numpy_info = installed_numpy(target)
    assert numpy_info.startswith("1.24.2 /usr/lib/python3/dist-packages/numpy"), numpy_info

    unit = target.path("/etc/systemd/system/d2stream.service")
    log = target.root.parent / f"{target.root.name}.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(service_command(target, unit, SYSTEM_PYTHON), stdout=err,
                                stderr=err)
    stderr = lambda: log.read_text(encoding="utf-8", errors="replace")  # noqa: E731
    try:
        wait_for(lambda: proc.poll() is not None or (h := health(port)).get("status") == "ok"
                 and h["faults"]["sinks"].get("mqtt", {}).get("delivered", 0) > 0, 300,
                 "a healthy installed service", stderr)
        assert proc.poll() is None, f"the service exited ({proc.returncode}):\n{stderr()}"
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uid = pwd.getpwnam(target.user).pw_uid
        assert f"Uid:\t{uid}\t{uid}" in status and "Seccomp:\t2" in status, status
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        log_text = stderr()
        log.unlink(missing_ok=True)
    assert code == 0, log_text
    assert "Traceback" not in log_text and "Permission denied" not in log_text, log_text
    assert sorted(p.name for p in target.path("/etc/d2stream").iterdir()) == ["config.yaml"]
    written = [state / "var" / "events.jsonl", state / "var" / "journal.db"]
    assert all(p.is_file() and p.stat().st_uid == uid for p in written), written
    assert list((state / "var" / "snapshots" / "demo").glob("*.jpg")), log_text
    assert any((cache / "var" / "ort-cache").iterdir()), "no optimised graph cached"

"""systemd/d2stream.service: passes ``systemd-analyze verify`` and states the service contract."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.daemon.daemon_helpers import REPO_ROOT, require_program

UNIT = REPO_ROOT / "systemd" / "d2stream.service"
INSTALLED_BINARY = "/opt/d2stream/venv/bin/d2stream"


def settings(path: Path = UNIT) -> dict[str, list[str]]:
    """``Key -> [values]`` of every section (keys such as DeviceAllow repeat)."""
    out: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.fixture()
def unit_with_local_binary(tmp_path: Path) -> Path:
    """The unit as shipped, with its executable pointed at this checkout (``verify`` checks that
    ExecStart= names an executable file)."""
    wrapper = tmp_path / "d2stream"
    wrapper.write_text(f'#!/bin/sh\ncd {REPO_ROOT} && exec {sys.executable} -m daemon.cli.main '
                       '"$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED_BINARY in text
    unit = tmp_path / "d2stream.service"
    unit.write_text(text.replace(INSTALLED_BINARY, str(wrapper)), encoding="utf-8")
    return unit


def test_systemd_analyze_verify(unit_with_local_binary: Path) -> None:
    analyze = require_program("systemd-analyze")
    proc = subprocess.run([analyze, "verify", str(unit_with_local_binary)], capture_output=True,
                          text=True, timeout=120)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines()
                  if "d2stream.service" in line]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


def test_hardening_exposure_is_low(unit_with_local_binary: Path) -> None:
    analyze = require_program("systemd-analyze")
    proc = subprocess.run([analyze, "security", "--offline=true", str(unit_with_local_binary)],
                          capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for d2stream.service: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 3.0


def test_service_contract() -> None:
    s = settings()
    single = {k: v[-1] for k, v in s.items()}
    assert single["Type"] == "notify" and single["NotifyAccess"] == "main"
    assert int(single["WatchdogSec"]) > 0
    assert single["Restart"] == "on-failure"
    assert "78" in single["RestartPreventExitStatus"].split()  # EX_CONFIG: not restarted
    # No camera at start exits 1: restarted every RestartSec for as long as it takes (a camera
    # late at boot never turns into a permanently failed unit).
    assert single["StartLimitIntervalSec"] == "0" and float(single["RestartSec"]) > 0
    assert "StartLimitBurst" not in single
    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text(encoding="utf-8"))
    assert float(single["TimeoutStopSec"]) > config["service"]["stop_timeout_s"]
    assert single["User"] == "d2stream" and single["KillMode"] == "mixed"
    assert single["ExecStart"].endswith("run --config /etc/d2stream/config.yaml")
    assert "ExecStartPre" not in single  # its failure would be restarted despite exit 78
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert single[key] == "yes", key
    assert single["ProtectSystem"] == "strict"
    assert "char-video4linux rw" in s["DeviceAllow"]
    assert "video" in single["SupplementaryGroups"].split()

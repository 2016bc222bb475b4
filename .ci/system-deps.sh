#!/usr/bin/env bash
# Installs the Debian packages the test-suite needs, when they are missing:
#   mosquitto        a real MQTT broker for the daemon's MQTT sink tests
#   chromium         headless browser that renders the live-view page
#   xvfb             virtual X display for the preview-window test
#   systemd          systemd-analyze, to verify systemd/d2stream.service
#   gcc libc6-dev    a C compiler for the CPU clock probe of `d2stream bench` (daemon/perf/clock.py)
#   ffmpeg           recordings: remux/encode segments, cut clips (daemon.recordings), ffprobe
#   python3-venv python3-numpy python3-numexpr
#                    Debian's Python with its own numpy and a module compiled for it: the
#                    documented install (docs/install.md) is tested on them, like Raspberry Pi
#                    OS's picamera2 in a venv with system site packages
#   qemu-user debootstrap
#                    make test-aarch64: an aarch64 Debian Python run under emulation
#   libgl1 libglib2.0-0 libsm6 libice6 libxext6 libx11-xcb1
#                    shared libraries that opencv-python's Qt highgui (preview window) loads
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v cc >/dev/null 2>&1 || need+=(gcc)
[ -f /usr/include/stdio.h ] || need+=(libc6-dev)
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
for pkg in python3-venv python3-numpy python3-numexpr; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib 'libGL\.so\.1' || need+=(libgl1)
have_lib 'libgthread-2\.0\.so\.0' || need+=(libglib2.0-0)
have_lib 'libSM\.so\.6' || need+=(libsm6)
have_lib 'libICE\.so\.6' || need+=(libice6)
have_lib 'libXext\.so\.6' || need+=(libxext6)
have_lib 'libX11-xcb\.so\.1' || need+=(libx11-xcb1)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

#!/usr/bin/env bash
# An aarch64 Python for the device-side tests under emulation (make test-aarch64):
#   .ci/aarch64-sysroot.sh X86_PYTHON DIR
# DIR/root     Debian bookworm arm64 (debootstrap --foreign: nothing of it runs during set-up) with
#              python3.11 unpacked, a /proc/cpuinfo of a Cortex-A72 (see below) and
#              DIR/root/usr/bin/python3-qemu, the interpreter as a script the x86 kernel can start
# DIR/site     the aarch64 wheels from PyPI (the versions X86_PYTHON has, so that both sides run
#              the same onnxruntime, numpy, OpenCV, Pillow), installed by the x86 pip
# DIR/site-openvino  OpenVINO's aarch64 wheel apart: on PYTHONPATH only for the backend tests, so
#              that elsewhere `backend: auto` has one engine (as the default install on a Pi) and
#              does not measure two under emulation at every model load
# Kept between runs; rebuilt when the wanted versions change. Needs root (debootstrap) and the
# Debian packages qemu-user and debootstrap (.ci/system-deps.sh installs them).
set -euo pipefail
py=${1:?usage: aarch64-sysroot.sh X86_PYTHON DIR}
dir=${2:?usage: aarch64-sysroot.sh X86_PYTHON DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
root=$dir/root

# The device side's packages and the tests' own, pinned to what the x86 venv has.
names='numpy|onnxruntime|pillow|opencv[-_]python[-_]headless|pyyaml|pydantic|pydantic[-_]core|tqdm'
names+='|paho[-_]mqtt|pycocotools|pytest|pytest[-_]timeout|hypothesis'
"$py" -m pip freeze --exclude-editable | grep -iE "^($names)==" | sort > "$dir/wanted.txt"
"$py" -m pip freeze --exclude-editable | grep -iE "^openvino(-telemetry)?==" | sort \
  > "$dir/wanted-openvino.txt"
for f in wanted wanted-openvino; do
  [ -s "$dir/$f.txt" ] || { echo "aarch64-sysroot: $f: no packages found in $py" >&2; exit 1; }
done

if [ ! -x "$root/usr/bin/python3.11" ]; then
  echo "aarch64-sysroot: Debian bookworm arm64 into $root"
  rm -rf "$root"
  debootstrap --foreign --arch=arm64 --variant=minbase \
    --include=python3.11-minimal,libpython3.11-stdlib,python3.11,libgomp1,libstdc++6 \
    bookworm "$root" http://deb.debian.org/debian > "$dir/debootstrap.log"
  # --foreign unpacks the essential packages only; the others wait in the apt cache.
  for deb in "$root"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$root"; done
fi

# qemu-user reads /proc/cpuinfo through the sysroot first (-L): without an aarch64 one, ONNX
# Runtime's cpuinfo parses the x86 host's file and crashes at import. Two Cortex-A72 cores
# (Raspberry Pi 4: fp, asimd, crc32; no dot product), the CPU qemu emulates (QEMU_CPU below).
mkdir -p "$root/proc"
for i in 0 1; do
  printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$i"
  printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n'
  printf 'CPU revision\t: 3\n\n'
done > "$root/proc/cpuinfo"
# The same CPU's MIDR_EL1 where OpenVINO's oneDNN (xbyak_aarch64) looks for it.
for i in 0 1; do
  mkdir -p "$root/sys/devices/system/cpu/cpu$i/regs/identification"
  echo 0x00000000410fd083 > "$root/sys/devices/system/cpu/cpu$i/regs/identification/midr_el1"
done

# The interpreter as a shell script: multiprocessing's spawn and subprocess start sys.executable,
# and the x86 kernel cannot start an aarch64 binary without binfmt_misc (-0 makes this script
# the interpreter's argv[0], so sys.executable points here in every child too).
cat > "$root/usr/bin/python3-qemu" <<'EOF'
#!/bin/sh
R="$(cd "$(dirname "$0")/../.." && pwd)"
export QEMU_CPU="${QEMU_CPU:-cortex-a72}"
exec qemu-aarch64 -L "$R" -0 "$R/usr/bin/python3-qemu" "$R/usr/bin/python3.11" "$@"
EOF
chmod +x "$root/usr/bin/python3-qemu"

platforms=(--platform manylinux2014_aarch64)
for v in 17 28 31 34 35 36; do platforms+=(--platform "manylinux_2_${v}_aarch64"); done
install_site() {  # install_site NAME REQUIREMENTS [pip options]: DIR/NAME from DIR/REQUIREMENTS
  local site=$1 req=$2; shift 2
  if ! cmp -s "$dir/$req" "$dir/$site.txt"; then
    echo "aarch64-sysroot: aarch64 wheels into $dir/$site"
    rm -rf "${dir:?}/$site"
    "$py" -m pip install -q --target "$dir/$site" "${platforms[@]}" --only-binary=:all: \
      --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none "$@" \
      -r "$dir/$req"
    cp "$dir/$req" "$dir/$site.txt"
  fi
}
install_site site wanted.txt
install_site site-openvino wanted-openvino.txt --no-deps
PYTHONPATH="$dir/site" "$root/usr/bin/python3-qemu" -c 'import platform, onnxruntime; print("aarch64-sysroot:", platform.machine(), "Python", platform.python_version(), "onnxruntime", onnxruntime.__version__)'

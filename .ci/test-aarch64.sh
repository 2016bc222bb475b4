#!/usr/bin/env bash
# make test-aarch64: the device-side tests on aarch64 under qemu-user emulation (docs/aarch64.md).
#   .ci/test-aarch64.sh X86_PYTHON
# 1. an aarch64 Debian Python with the aarch64 wheels of the x86 venv's versions (.cache/aarch64)
# 2. x86: the fixture models exported, the demo model's int8 export, their x86 AP
# 3. aarch64: the suite's own tests of the device path on those files (no export tools there)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:?usage: test-aarch64.sh X86_PYTHON}
cache=${D2STREAM_AARCH64_CACHE:-.cache/aarch64}
start=$(date +%s)
bash .ci/aarch64-sysroot.sh "$py" "$cache"
"$py" .ci/aarch64-export.py "$cache/models"
cache=$(cd "$cache" && pwd)
export PYTHONPATH="$cache/site:$PWD" D2STREAM_PREEXPORTED="$cache/models"
export D2STREAM_AARCH64_REPORT="$cache/aarch64_ap.json"
rm -f "$D2STREAM_AARCH64_REPORT"
# The smallest set that proves the device path: the final instances of every fixture model equal
# Detectron2's (boxes, masks, keypoints, cascade, panoptic: pre-processing, the network,
# post-processing, mask pasting and the panoptic combination all run), the AP of the fp32 and int8
# files against their x86 figures, and a short `d2stream run` on a video (event log, MQTT,
# snapshots). ONNX Runtime only, as the default install on a Pi. mask_rcnn_R_50_C4 is left out
# for time: its res5 head over 1000 RoIs takes ~3 s an image on x86, minutes under emulation, and
# runs the same operators as the models that are in.
run_tests() { "$cache/root/usr/bin/python3-qemu" -m pytest -p no:cacheprovider -v "$@"; }
run_tests \
  "tests/export_tools/parity/test_box_parity.py::test_final_instances_match_detectron2" \
  "tests/export_tools/parity/test_heads_parity.py::test_final_instances_match_detectron2" \
  "tests/export_tools/parity/test_heads_parity.py::test_panoptic_segmentation_matches_detectron2" \
  tests/daemon/evaluation/test_cross_arch_ap.py \
  tests/daemon/e2e/test_run_events.py \
  -k "not pkl and not mask_rcnn_R_50_C4"
# OpenVINO's aarch64 build on Detectron2's raw outputs, and `auto` choosing between the two.
PYTHONPATH="$PYTHONPATH:$cache/site-openvino" run_tests \
  "tests/daemon/backends/test_backends.py::test_backend_matches_detectron2" \
  "tests/daemon/backends/test_backends.py::test_predictor_end_to_end_with_threads" \
  -k "mask_rcnn_R_50_FPN or end_to_end"
echo "aarch64 figures: $(tr -d '\n ' < "$D2STREAM_AARCH64_REPORT")"
echo "make test-aarch64 took $(( $(date +%s) - start )) s"

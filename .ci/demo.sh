#!/usr/bin/env bash
# The main job (`make run`): export the confident demo model from the fixtures, show its
# predictions on the fixture images, then run the camera daemon with config.yaml until Ctrl-C on a
# camera ($D2STREAM_CAMERA, else /dev/video0 if present) or, without one, on a demo video it
# writes and plays in a loop. The live-view URL is printed once the HTTP server answers.
# Usage: bash .ci/demo.sh PYTHON FIXTURES
set -euo pipefail
PY="${1:-.venv/bin/python}"
FIXTURES="${2:-../shared/fixtures}"
MODEL_DIR="$FIXTURES/mask_rcnn_R_50_FPN_demo"
[ -d "$MODEL_DIR" ] || { echo "demo model not found: $MODEL_DIR (../shared/fixtures)" >&2; exit 2; }
cd "$(dirname "$0")/.."
mkdir -p models out var
if [ ! -f models/demo.onnx ]; then
  "$PY" -m daemon.cli.main export --config-file "$MODEL_DIR/config.yaml" \
    --weights "$MODEL_DIR/model_final.pth" --output models/demo.onnx \
    --classes square,circle,triangle --name mask_rcnn_R_50_FPN_demo
fi
"$PY" -m daemon.cli.main predict models/demo.onnx "$MODEL_DIR" --json out/demo.json \
  --output-dir out/demo
echo "annotated images in out/demo, detections in out/demo.json"
cat <<'NOTE'
note: the demo model is a small test model trained on synthetic shapes (square, circle,
      triangle); it sees nothing else. For a real model (80 COCO classes, exported once and
      cached; needs the network the first time):
        D2STREAM_MODEL=zoo:COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x make run
NOTE

# The camera: the one named by D2STREAM_CAMERA, the first V4L2 device, or a demo video.
if [ -z "${D2STREAM_CAMERA:-}" ] && [ -e /dev/video0 ] && [ "${D2STREAM_DEMO_VIDEO:-0}" != 1 ]; then
  export D2STREAM_CAMERA=/dev/video0
fi
if [ -z "${D2STREAM_CAMERA:-}" ]; then
  [ -f var/demo.mp4 ] || "$PY" -m daemon.cli.main demo-video var/demo.mp4 --frames 150 --fps 10
  export D2STREAM_LOOP=true
  echo "no camera: playing var/demo.mp4 (moving shapes) in a loop; set D2STREAM_CAMERA to use one"
fi
# The live view on 8080, or on a free port when 8080 is taken.
if [ -z "${D2STREAM_HTTP_PORT:-}" ]; then
  D2STREAM_HTTP_PORT=$("$PY" -c 'import socket
s = socket.socket()
try:
    s.bind(("127.0.0.1", 8080))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
  export D2STREAM_HTTP_PORT
fi
"$PY" -m daemon.cli.main check-config config.yaml
echo "starting the daemon: it runs until Ctrl-C; events: var/events.jsonl, snapshots: var/snapshots/"
# The URL once the server answers ($$ stays this process's id: the daemon replaces the shell).
"$PY" .ci/live_view_url.py "$D2STREAM_HTTP_PORT" $$ &
exec "$PY" -m daemon.cli.main run --config config.yaml

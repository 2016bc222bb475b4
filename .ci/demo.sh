#!/usr/bin/env bash
# The main job (`make run`): export the confident demo model from the fixtures, then run it.
set -euo pipefail
PY="${1:-.venv/bin/python}"
FIXTURES="${2:-../shared/fixtures}"
MODEL_DIR="$FIXTURES/mask_rcnn_R_50_FPN_demo"
[ -d "$MODEL_DIR" ] || { echo "demo model not found: $MODEL_DIR (../shared/fixtures)" >&2; exit 2; }
mkdir -p models out
if [ ! -f models/demo.onnx ]; then
  "$PY" -m daemon.cli.main export --config-file "$MODEL_DIR/config.yaml" \
    --weights "$MODEL_DIR/model_final.pth" --output models/demo.onnx \
    --classes square,circle,triangle --name mask_rcnn_R_50_FPN_demo
fi
"$PY" -m daemon.cli.main predict models/demo.onnx "$MODEL_DIR" --json out/demo.json \
  --output-dir out/demo
echo "annotated images in out/demo, detections in out/demo.json"

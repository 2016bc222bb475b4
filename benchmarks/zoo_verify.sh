#!/bin/bash
# d2stream verify on one model-zoo config at full width with synthetic calibrated weights:
#   D2_PYTHON=/path/to/detectron2-venv/bin/python D2_SRC=../detectron2-src \
#       benchmarks/zoo_verify.sh COCO-Detection/retinanet_R_101_FPN_3x.yaml [OUT_DIR]
# Writes OUT_DIR/{config.yaml,w.pkl,m.onnx,report.json}; exit status as d2stream verify's.
set -euo pipefail
rel=$1
out=${2:-/tmp/zoo_verify/$(basename "$rel" .yaml)}
py=${D2_PYTHON:?set D2_PYTHON to a python with torch and detectron2}
src=$(cd "${D2_SRC:?set D2_SRC to the Detectron2 source tree}" && pwd)
fixtures=${D2STREAM_FIXTURES:-../shared/fixtures}
mkdir -p "$out"
printf '_BASE_: "%s/configs/%s"\nINPUT:\n  MIN_SIZE_TEST: 320\n' "$src" "$rel" > "$out/config.yaml"
export PYTHONPATH=${PYTHONPATH:-.}
"$py" -m benchmarks.synthetic_checkpoint "$out/config.yaml" "$out/w.pkl"
"$py" -m daemon.cli.main export --config-file "$out/config.yaml" --weights "$out/w.pkl" \
    --output "$out/m.onnx"
"$py" -m daemon.cli.main verify "$out/m.onnx" "$fixtures/faster_rcnn_R_50_FPN/image_0.png" \
    "$fixtures/mask_rcnn_R_50_FPN_demo/image_1.png" --config-file "$out/config.yaml" \
    --weights "$out/w.pkl" --threads 1 --report "$out/report.json"

"""RoIAlign over FPN levels: one ONNX ``RoiAlign`` per level (what the exporter builds) against one
call over all levels edge-padded to P2's size and stacked on the batch axis (boxes pre-scaled by
each level's 1/stride, the level as batch index). Checks the pooled features agree and times both
with ONNX Runtime::

    python -m benchmarks.roi_align_bench [--boxes 1000] [--threads 2] [--runs 15]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

CHANNELS = 256
IMAGE = (320, 427)  # MIN_SIZE_TEST 320 on a 480x640 frame
STRIDES = (4, 8, 16, 32)
ATTRS = {"coordinate_transformation_mode": "half_pixel", "mode": "avg", "output_height": 7,
         "output_width": 7, "sampling_ratio": 0}


def level_sizes() -> list[tuple[int, int]]:
    """Feature sizes of P2..P5 for the image padded to a multiple of 32."""
    h, w = (-(-d // 32) * 32 for d in IMAGE)
    return [(h // s, w // s) for s in STRIDES]


def random_boxes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Boxes clipped to the image, sizes log-uniform in 8..320 px."""
    cx, cy = rng.uniform(0, IMAGE[1], n), rng.uniform(0, IMAGE[0], n)
    side, aspect = np.exp(rng.uniform(np.log(8), np.log(320), n)), np.exp(rng.uniform(-.7, .7, n))
    half_w, half_h = side * aspect / 2, side / aspect / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], 1)
    return np.clip(boxes, 0, [IMAGE[1], IMAGE[0]] * 2).astype(np.float32)


def fpn_levels(boxes: np.ndarray) -> np.ndarray:
    """Detectron2's level rule (canonical 224 px at level 4), relative to P2."""
    size = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    return (np.clip(np.floor(np.log2(size / 224 + 1e-8) + 4), 2, 5) - 2).astype(np.int64)


def _value(name: str, dtype: int, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def per_level_model(sizes: list[tuple[int, int]]) -> onnx.ModelProto:
    nodes, inputs, outputs = [], [], []
    for i, ((h, w), stride) in enumerate(zip(sizes, STRIDES, strict=True)):
        inputs += [_value(f"f{i}", TensorProto.FLOAT, [1, CHANNELS, h, w]),
                   _value(f"b{i}", TensorProto.FLOAT, [None, 4]),
                   _value(f"i{i}", TensorProto.INT64, [None])]
        nodes.append(helper.make_node("RoiAlign", [f"f{i}", f"b{i}", f"i{i}"], [f"o{i}"],
                                      spatial_scale=1.0 / stride, **ATTRS))
        outputs.append(_value(f"o{i}", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "per_level", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def stacked_model(sizes: list[tuple[int, int]]) -> onnx.ModelProto:
    (h0, w0), nodes, stacked = sizes[0], [], ["f0"]
    inputs = [_value(f"f{i}", TensorProto.FLOAT, [1, CHANNELS, h, w])
              for i, (h, w) in enumerate(sizes)]
    for i, (h, w) in enumerate(sizes[1:], 1):
        pads = numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, h0 - h, w0 - w], np.int64))
        nodes += [helper.make_node("Constant", [], [f"p{i}"], value=pads),
                  helper.make_node("Pad", [f"f{i}", f"p{i}"], [f"q{i}"], mode="edge")]
        stacked.append(f"q{i}")
    nodes += [helper.make_node("Concat", stacked, ["all"], axis=0),
              helper.make_node("RoiAlign", ["all", "b", "i"], ["o"], spatial_scale=1.0, **ATTRS)]
    inputs += [_value("b", TensorProto.FLOAT, [None, 4]), _value("i", TensorProto.INT64, [None])]
    graph = helper.make_graph(nodes, "stacked", inputs, [_value("o", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def median_ms(session: ort.InferenceSession, feeds: dict, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args(argv)
    rng, sizes = np.random.default_rng(0), level_sizes()
    feats = [rng.standard_normal((1, CHANNELS, h, w)).astype(np.float32) for h, w in sizes]
    boxes = random_boxes(args.boxes, rng)
    levels = fpn_levels(boxes)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    cpu = ["CPUExecutionProvider"]
    sessions = [ort.InferenceSession(m.SerializeToString(), opts, providers=cpu)
                for m in (per_level_model(sizes), stacked_model(sizes))]
    per_level: dict = {}
    for i, feat in enumerate(feats):
        mask = levels == i
        per_level |= {f"f{i}": feat, f"b{i}": boxes[mask], f"i{i}": np.zeros(mask.sum(), np.int64)}
    scale = np.array([1.0 / s for s in STRIDES], np.float32)[levels][:, None]
    stacked = {f"f{i}": f for i, f in enumerate(feats)} | {"b": boxes * scale, "i": levels}
    reference = np.empty((args.boxes, CHANNELS, 7, 7), np.float32)
    for i, out in enumerate(sessions[0].run(None, per_level)):
        reference[levels == i] = out
    diff = np.abs(reference - sessions[1].run(None, stacked)[0]).max()
    print(f"boxes per level {np.bincount(levels, minlength=4).tolist()}, max abs diff {diff:.2e}")
    for _ in range(args.rounds):
        a = median_ms(sessions[0], per_level, args.runs)
        b = median_ms(sessions[1], stacked, args.runs)
        print(f"per level {a:.1f} ms | stacked {b:.1f} ms | stacked/per-level {b / a:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

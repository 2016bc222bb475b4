"""Static post-training int8 quantisation of an exported model (``d2stream export --int8``).

The heavy layers (backbone, FPN, RPN and RoI-head convolutions, the box head's fully connected
layers) get int8 weights (per output channel) and int8 activations whose ranges are calibrated on
images from a folder, pre-processed exactly as the :class:`~daemon.inference.predictor.Predictor`
does. Everything whose precision decides which boxes survive stays float: the layers that
produce objectness, class scores, box deltas and mask logits, and all of anchor generation, box
decoding, NMS, RoIAlign and the selection logic (they are not convolutions or matmuls, so the
quantiser never touches them). The result is a standard QDQ-format ONNX model (QuantizeLinear /
DequantizeLinear around float ops) that ONNX Runtime fuses into int8 kernels and other engines
can run as well.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from d2common.image_io import list_images, read_image_bgr
from d2common.metadata import ModelMetadata
from d2common.onnx_files import has_external_data, model_files
from d2common.transforms import to_network_input
from export_tools.errors import ExportError
from export_tools.onnx_io import save_model

log = logging.getLogger(__name__)

# Node types whose weights and inputs are quantised.
QUANTIZED_OP_TYPES = ("Conv", "Gemm", "MatMul")
# Layers (by node-name fragment) kept in float: the last layer of every head, whose outputs are
# scores, deltas and logits that thresholds, top-k and NMS compare directly.
FLOAT_LAYERS = ("objectness_logits", "anchor_deltas", "cls_score", "bbox_pred",
                "mask_head/predictor", "keypoint_head/score_lowres", "sem_seg_head/predictor")
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
# Activation x weight types of the QDQ graph: unsigned activations (the default: ONNX Runtime's
# x86-64 kernels multiply u8 x s8) or signed ones (S8S8, ONNX Runtime's own QDQ default and the
# type its aarch64 sdot kernels take without conversion). docs/aarch64.md: AP of both on both.
INT8_FORMATS = ("u8s8", "s8s8")


class QuantizationError(ExportError):
    """Quantisation cannot run (no calibration images, unreadable model...)."""


@dataclass(frozen=True)
class QuantizeOptions:
    """Settings of :func:`quantize_model`.

    Attributes:
        max_images: calibration images used at most (the first ones in sorted order).
        method: ``minmax`` (ranges seen), ``percentile`` (99.999th percentile of magnitudes) or
            ``entropy`` (KL-divergence optimal clipping).
        per_channel: one weight scale per output channel (recommended).
        reduce_range: 7-bit weights, for x86 CPUs without VNNI where u8 x s8 products can
            saturate.
        int8_format: ``u8s8`` (uint8 activations, int8 weights) or ``s8s8`` (both int8).
        min_size / max_size: calibration pre-processing (default: the model's own).
    """

    max_images: int = 32
    method: str = "minmax"
    per_channel: bool = True
    reduce_range: bool = False
    int8_format: str = "u8s8"
    min_size: int | None = None
    max_size: int | None = None


def float_node_names(model: onnx.ModelProto) -> list[str]:
    """Quantisable nodes that stay float (:data:`FLOAT_LAYERS`)."""
    return [n.name for n in model.graph.node
            if n.op_type in QUANTIZED_OP_TYPES and any(f in n.name for f in FLOAT_LAYERS)]


def calibration_images(folder: str | os.PathLike, limit: int) -> list[Path]:
    """Image files in ``folder`` (sorted), at most ``limit``; raises when there are none."""
    path = Path(folder)
    if not path.is_dir():
        raise QuantizationError(f"--calibration: {path} is not a folder")
    images = list_images([str(path)])[:limit]
    if not images:
        raise QuantizationError(f"--calibration: no images (.jpg, .png, ...) in {path}")
    return images


def network_inputs(images: Sequence[Path], meta: ModelMetadata,
                   options: QuantizeOptions) -> Iterator[np.ndarray]:
    """``(1, 3, h, w)`` float32 inputs, pre-processed like the Predictor's."""
    short = options.min_size or meta.min_size_test
    longest = options.max_size or meta.max_size_test
    for path in images:
        yield to_network_input(read_image_bgr(path), meta.input_format, short, longest)


def _data_reader(inputs: Iterator[np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(inputs, None)
            return None if x is None else {"image": x}

    return _Reader()


def read_metadata(model: onnx.ModelProto, source: str) -> ModelMetadata:
    props = {p.key: p.value for p in model.metadata_props}
    return ModelMetadata.from_props(props, source)


def quantize_model(model_path: str | os.PathLike, output: str | os.PathLike,
                   calibration_dir: str | os.PathLike,
                   options: QuantizeOptions | None = None) -> Path:
    """Write the int8 (QDQ) version of the fp32 model ``model_path`` to ``output``."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    options = options or QuantizeOptions()
    if options.method not in CALIBRATION_METHODS:
        raise QuantizationError(f"calibration method {options.method!r} is not one of "
                                f"{', '.join(CALIBRATION_METHODS)}")
    if options.int8_format not in INT8_FORMATS:
        raise QuantizationError(f"int8 format {options.int8_format!r} is not one of "
                                f"{', '.join(INT8_FORMATS)}")
    fp32 = onnx.load(str(model_path), load_external_data=False)  # the graph, not the weights
    meta = read_metadata(fp32, str(model_path))
    images = calibration_images(calibration_dir, options.max_images)
    log.info("calibrating %s on %d images from %s (%s)", model_path, len(images),
             calibration_dir, options.method)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="d2stream-int8-") as tmp:
        tmp_out = Path(tmp) / "int8.onnx"
        with _quiet_preprocess_advice():
            quantize_static(
                str(model_path), str(tmp_out),
                _data_reader(network_inputs(images, meta, options)),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OP_TYPES),
                per_channel=options.per_channel,
                reduce_range=options.reduce_range,
                activation_type=(QuantType.QInt8 if options.int8_format == "s8s8"
                                 else QuantType.QUInt8),
                weight_type=QuantType.QInt8,
                nodes_to_exclude=float_node_names(fp32),
                calibrate_method=_method(options.method),
                use_external_data_format=has_external_data(Path(model_path)),
            )
        _stamp_metadata(tmp_out, out, meta, len(images), options)
    log.info("wrote %s (%.1f MB)", out, sum(f.stat().st_size for f in model_files(out)) / 1e6)
    return out


@contextlib.contextmanager
def _quiet_preprocess_advice() -> Iterator[None]:
    """Drop the quantiser's root-logger advice to run its shape pre-processing: our graphs are
    already folded (batch norms in the convolutions), which is what its optimisation would do."""

    def keep(record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}[name]


def _stamp_metadata(path: Path, out: Path, meta: ModelMetadata, n_images: int,
                    options: QuantizeOptions) -> None:
    """Carry the d2stream metadata over, record how the model was quantised, write ``out``
    (one file unless the int8 model is still over 2 GiB)."""
    model = onnx.load(str(path))
    info = {"precision": "int8", "format": "QDQ", "calibration_images": n_images,
            "method": options.method, "per_channel": options.per_channel,
            "reduce_range": options.reduce_range, "int8_format": options.int8_format}
    stamped = ModelMetadata(**{**meta.__dict__, "quantization": info})
    del model.metadata_props[:]
    for key, value in stamped.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    save_model(model, out)

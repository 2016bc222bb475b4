"""Full-width models with synthetic weights, for speed measurements of the model-zoo architectures.

A :class:`SyntheticWeights` store stands in for a checkpoint: it hands out an array of the shape
the graph builder asks for, so any architecture the exporter supports can be built at full width
without downloading its weights. The values keep activations in a sane range (He-initialised
convolutions, identity batch-norm statistics) so that no denormals or infinities distort timings,
and the box classifier is biased so that random proposals still yield detections (the
post-processing, NMS and mask head then do realistic work).
"""

from __future__ import annotations

import logging
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from export_tools.config import Config
from export_tools.modeling.weights import GeneratedWeights

log = logging.getLogger(__name__)

# Logit scale of the box classifier: large enough that a fraction of the (proposal, class) pairs
# score above the usual SCORE_THRESH_TEST of 0.05, as on a busy real scene.
CLS_SCORE_STD = 0.25
BACKGROUND_BIAS = 2.0


class SyntheticWeights(GeneratedWeights):
    """A :class:`WeightStore` that synthesises every requested array (deterministically by name).

    ``get(name, shape)`` returns ``shape``-shaped float32 values:

    - multi-dimensional weights: He-normal, std ``sqrt(2 / fan_in)``, except the layers
      Detectron2 initialises with a fixed std (:data:`FIXED_STD`: RPN head 0.01, box regressor
      0.001) and the box classifier (:data:`CLS_SCORE_STD`, so that class probabilities spread
      around the score threshold);
    - batch norms: ``running_var`` 2 (the second moment a He-initialised conv produces; the stem's
      is scaled by the image's), ``running_mean`` and ``bias`` 0, ``weight`` 1 except the last
      norm of each residual branch (:data:`RESIDUAL_GAMMA`);
    - other biases 0; the background logit of ``cls_score`` gets :data:`BACKGROUND_BIAS`.
    """

    def __init__(self, seed: int = 0, input_second_moment: float = 1.0,
                 basic_blocks: bool = False) -> None:
        super().__init__(source="synthetic weights")
        self.seed = seed
        self.input_second_moment = input_second_moment
        self.basic_blocks = basic_blocks

    @classmethod
    def for_config(cls, cfg: Config, seed: int = 0) -> SyntheticWeights:
        """Weights scaled for ``cfg``'s pixel normalisation and ResNet block type."""
        mean = np.asarray(cfg.MODEL.PIXEL_MEAN, np.float64)
        std = np.asarray(cfg.MODEL.PIXEL_STD, np.float64)
        # pixels uniform in [0, 255]: E[(p - mean)^2] = var + (127.5 - mean)^2
        moment = float(np.mean((255.0**2 / 12 + (127.5 - mean) ** 2) / std**2))
        return cls(seed, moment, int(cfg.MODEL.RESNETS.DEPTH) in (18, 34))

    def _make(self, name: str, dims: tuple[int, ...]) -> np.ndarray:
        return synthesise(name, dims, self.seed, self.input_second_moment, self.basic_blocks)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every array handed out so far, by name (a checkpoint-like dict)."""
        return {n: self._make(n, s) for n, s in self.requested.items()}


# (substring of the weight name, std) for layers Detectron2 initialises with a fixed normal std;
# the first match wins. Other multi-dimensional weights are He-normal.
FIXED_STD = (
    ("rpn_head.conv", 0.01),
    ("rpn_head.objectness_logits", 0.01),
    ("rpn_head.anchor_deltas", 0.01),
    ("bbox_pred", 0.001),
    ("cls_score", CLS_SCORE_STD),
)
# Gain of the last batch norm of each residual branch: small, so that the sum over the blocks of
# a ResNet keeps activations of order one (trained networks behave alike).
RESIDUAL_GAMMA = 0.2


def synthesise(name: str, shape: tuple[int, ...], seed: int = 0,
               input_second_moment: float = 1.0, basic_blocks: bool = False) -> np.ndarray:
    """The synthetic array for ``name`` (see :class:`SyntheticWeights`).

    ``input_second_moment`` is E[x^2] of the normalised image; the stem's batch norm divides by
    it so that the stem output has unit scale whatever the pixel normalisation.
    ``basic_blocks``: the ResNet has basic blocks (R18/R34), whose last conv is ``conv2``.
    """
    if len(shape) == 1:
        return _vector(name, shape, input_second_moment, basic_blocks)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    fan_in = int(np.prod(shape[1:]))
    std = next((s for key, s in FIXED_STD if key in name),
               float(np.sqrt(2.0 / max(fan_in, 1))))
    return (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float32)


def _vector(name: str, shape: tuple[int, ...], input_second_moment: float,
            basic_blocks: bool) -> np.ndarray:
    module, leaf = name.rsplit(".", 1) if "." in name else ("", name)
    if leaf == "running_var":
        scale = 2.0 * input_second_moment if ".stem." in name else 2.0
        return np.full(shape, scale, np.float32)
    if leaf == "weight":
        last = ".conv2.norm" if basic_blocks else ".conv3.norm"
        gamma = RESIDUAL_GAMMA if module.endswith(last) else 1.0
        return np.full(shape, gamma, np.float32)
    arr = np.zeros(shape, np.float32)
    if name.endswith("cls_score.bias"):
        arr[-1] = BACKGROUND_BIAS
    return arr


def zoo_config(zoo_name: str, opts: Sequence[str] | None = None) -> Config:
    """The config of a model-zoo entry (defaults + the entry's overrides + ``opts``)."""
    from export_tools.config import load_config
    from export_tools.zoo.catalog import get_entry

    entry = get_entry(zoo_name)
    with tempfile.TemporaryDirectory() as tmp:
        path = entry.write_config(Path(tmp) / "config.yaml")
        return load_config(path, list(opts or []))


def build_random_model(zoo_name: str, opts: Sequence[str] | None = None, seed: int = 0,
                       model_name: str | None = None) -> onnx.ModelProto:
    """The ONNX model of a zoo architecture (e.g. ``COCO-Detection/faster_rcnn_R_50_FPN_3x``)
    at full width with :class:`SyntheticWeights`; ``opts`` override config keys."""
    from export_tools.export import build_onnx_from_weights
    from export_tools.modeling.supported import check_supported

    cfg = zoo_config(zoo_name, opts)
    check_supported(cfg)
    name = model_name or zoo_name.rsplit("/", 1)[-1] + "_random"
    model = build_onnx_from_weights(cfg, SyntheticWeights.for_config(cfg, seed), model_name=name)
    log.info("built %s: %d nodes", name, len(model.graph.node))
    return model

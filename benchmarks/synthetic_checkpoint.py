"""Write a model-zoo style ``.pkl`` of synthetic weights for a Detectron2 config.

    PYTHONPATH=. python -m benchmarks.synthetic_checkpoint CONFIG.yaml OUT.pkl [KEY VALUE ...]

The weights are :class:`CalibratedWeights` (``SyntheticWeights``, random but
calibrated: He-normal convolutions, identity batch norms, a biased box classifier) for every
array the exporter reads for ``CONFIG``. Both ``d2stream export`` and Detectron2 read the file
(``{"model": {name: array}, "__author__": ...}``), so ``d2stream verify`` can compare a zoo
architecture at full width without its real checkpoint.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np

from export_tools.perf.random_weights import SyntheticWeights

# RetinaNet's classifier is a 3x3 conv over 256 channels: the box classifier's std (0.25)
# saturates every score at 1.0 (all ties). Detectron2's own init: std 0.01, prior 0.01.
RETINA_CLS = "head.cls_score"
RETINA_CLS_STD = 0.01
RETINA_PRIOR = 0.01


class CalibratedWeights(SyntheticWeights):
    """:class:`SyntheticWeights` with RetinaNet's classifier initialised as Detectron2 does."""

    def _make(self, name: str, dims: tuple[int, ...]) -> np.ndarray:
        if not name.startswith(RETINA_CLS + "."):
            return super()._make(name, dims)
        if len(dims) == 1:
            return np.full(dims, -np.log((1 - RETINA_PRIOR) / RETINA_PRIOR), np.float32)
        rng = np.random.default_rng([self.seed, 15])
        return (rng.standard_normal(dims, dtype=np.float32) * RETINA_CLS_STD).astype(np.float32)


def main(argv: list[str]) -> int:
    from export_tools.config import load_config
    from export_tools.export import build_onnx_from_weights
    if len(argv) < 2:
        print(__doc__)
        return 2
    cfg = load_config(argv[0], argv[2:])
    weights = CalibratedWeights.for_config(cfg)
    build_onnx_from_weights(cfg, weights)
    state = weights.state_dict()
    with Path(argv[1]).open("wb") as fh:
        pickle.dump({"model": state, "__author__": "d2stream synthetic weights"}, fh)
    print(f"{argv[1]}: {len(state)} arrays")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

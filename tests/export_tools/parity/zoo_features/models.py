"""The small models of the zoo-feature parity data (ProposalNetwork, SemanticSegmentor, deformable
convolution).

Each is a model-zoo architecture at narrow widths (:data:`SMALL`) with deterministic synthetic
weights (:class:`FeatureWeights`), so no checkpoint is committed: the test and the generator
(``make_data.py``, which needs torch and detectron2) rebuild the same weights from the seed. The
committed ``config.yaml`` of each folder is the config Detectron2 ran (``cfg.dump()``); the
weights' checksum in ``manifest.json`` tells a change of the generator apart from a parity bug.
"""

from __future__ import annotations

import hashlib

import numpy as np

from export_tools.perf.random_weights import SyntheticWeights

HERE_NAME = "zoo_features"
#: narrow widths, as the shared fixtures use (MIN_SIZE_TEST 256 keeps the data small)
SMALL = ["MODEL.RESNETS.STEM_OUT_CHANNELS", "16", "MODEL.RESNETS.RES2_OUT_CHANNELS", "32",
         "MODEL.RESNETS.WIDTH_PER_GROUP", "8", "MODEL.FPN.OUT_CHANNELS", "32",
         "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "INPUT.MIN_SIZE_TEST", "256",
         "INPUT.MAX_SIZE_TEST", "400"]
#: folder -> Detectron2 zoo config (under Detectron2's configs/) and extra options
MODELS = {
    "rpn_R_50_FPN": ("COCO-Detection/rpn_R_50_FPN_1x.yaml", []),
    "rpn_R_50_C4": ("COCO-Detection/rpn_R_50_C4_1x.yaml", []),
    "semantic_R_50_FPN": ("Misc/semantic_R_50_FPN_1x.yaml", ["MODEL.SEM_SEG_HEAD.NUM_CLASSES",
                                                             "8"]),
    # deformable res3-res5 (Detectron2 runs DeformConv on CPU, not ModulatedDeformConv)
    "mask_rcnn_R_50_FPN_dconv": ("Misc/mask_rcnn_R_50_FPN_1x_dconv_c3-c5.yaml",
                                 ["MODEL.ROI_HEADS.NUM_CLASSES", "3", "MODEL.ROI_BOX_HEAD.FC_DIM",
                                  "64", "MODEL.ROI_MASK_HEAD.CONV_DIM", "32"]),
}
#: the shared fixture images the data was made on
IMAGES = ("faster_rcnn_R_50_FPN/image_0.png", "faster_rcnn_R_50_FPN/image_1.png")
# The RPN head's zoo init (std 0.01) leaves objectness logits within 1e-3 of each other on
# random features, where proposal order is a coin toss; these gains spread them like a
# trained RPN's (logits of a few units).
GAINS = (("rpn_head.conv", 20.0), ("rpn_head.objectness_logits", 5.0),
         ("rpn_head.anchor_deltas", 10.0))


class FeatureWeights(SyntheticWeights):
    """:class:`SyntheticWeights` with the RPN head spread out (:data:`GAINS`)."""

    def _make(self, name: str, dims: tuple[int, ...]) -> np.ndarray:
        arr = super()._make(name, dims)
        if len(dims) > 1:
            gain = next((g for key, g in GAINS if key in name), 1.0)
            arr = (arr * np.float32(gain)).astype(np.float32)
        return arr


def checksum(state: dict[str, np.ndarray]) -> str:
    """SHA-256 over the names, shapes and bytes of ``state`` (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        arr = np.ascontiguousarray(state[name], np.float32)
        digest.update(f"{name}{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()

"""RetinaNet's per-level BatchNorm (CycleBatchNormList): statistics per level, affine shared."""

from __future__ import annotations

import numpy as np

from export_tools.modeling.layers import _fold_batch_norm
from export_tools.modeling.weights import WeightStore


def test_per_level_statistics_with_the_lists_shared_affine() -> None:
    rng = np.random.default_rng(0)
    ch = 4
    state = {
        "head.cls_subnet.1.weight": rng.uniform(0.5, 2, ch).astype(np.float32),
        "head.cls_subnet.1.bias": rng.normal(size=ch).astype(np.float32),
    }
    for level in range(2):
        state[f"head.cls_subnet.1.{level}.running_mean"] = rng.normal(size=ch).astype(np.float32)
        state[f"head.cls_subnet.1.{level}.running_var"] = rng.uniform(0.5, 2, ch).astype(np.float32)
    w = WeightStore(state)
    conv_w = rng.normal(size=(ch, 3, 1, 1)).astype(np.float32)
    conv_b = rng.normal(size=ch).astype(np.float32)
    x = rng.normal(size=3)
    for level in range(2):
        fw, fb = _fold_batch_norm(w, f"head.cls_subnet.1.{level}", conv_w, conv_b, ch)
        conv = conv_w[:, :, 0, 0] @ x + conv_b
        mean = state[f"head.cls_subnet.1.{level}.running_mean"]
        var = state[f"head.cls_subnet.1.{level}.running_var"]
        expected = ((conv - mean) / np.sqrt(var + 1e-5) * state["head.cls_subnet.1.weight"]
                    + state["head.cls_subnet.1.bias"])
        np.testing.assert_allclose(fw[:, :, 0, 0] @ x + fb, expected, rtol=1e-5, atol=1e-5)
    w.finish()  # every weight used, none missing

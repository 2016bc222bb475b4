"""Regenerate ``swin_expected.npz`` with Detectron2's own ``SwinTransformer`` (torch needed).

    PYTHONPATH=.:/path/to/detectron2 /path/to/detectron2-venv/bin/python \
        -m tests.export_tools.modeling.make_swin_data

A tiny Swin (``SPEC``: 4 stages, window 7) with seeded random weights, every parameter drawn
at a scale that makes it matter (LayerNorm affines, the relative position bias tables), runs on
images whose sides are multiples of neither the patch nor the window size, so patch padding,
window padding and cropping, shifted-window masks of padded grids (also a grid smaller than one
window) and odd-sized patch merging are all exercised. Saved: the state dict under
``backbone.bottom_up.`` (with the ``relative_position_index`` buffers), each image and each
``p0..p3`` output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "swin_expected.npz"
PREFIX = "backbone.bottom_up"
# SwinTransformer(**SPEC) in Detectron2's argument names
SPEC = {"embed_dim": 8, "depths": [2, 2, 2, 2], "num_heads": [2, 2, 4, 4], "window_size": 7,
        "mlp_ratio": 4.0, "drop_path_rate": 0.0, "out_indices": [0, 1, 2, 3]}
# name -> (H, W): 101x134 -> token grids 26x34, 13x17, 7x9, 4x5; 64x64 -> 16, 8, 4, 2
CASES = {"odd": (101, 134), "square": (64, 64)}


def _randomize(model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    import torch

    state = {}
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dtype.is_floating_point:
                values = rng.standard_normal(tuple(tensor.shape)).astype(np.float32)
                if name.endswith(".weight") and tensor.ndim == 1:  # LayerNorm gain
                    values = 1.0 + 0.2 * values
                elif name.endswith(".weight"):  # Linear / Conv: ~unit-variance outputs
                    values = values / np.sqrt(np.prod(tensor.shape[1:]))
                elif not name.endswith("relative_position_bias_table"):
                    values = 0.2 * values
                tensor.copy_(torch.from_numpy(values))
            state[f"{PREFIX}.{name}"] = tensor.numpy().copy()
    return state


def main() -> None:
    import torch
    from detectron2.modeling.backbone.swin import SwinTransformer

    torch.manual_seed(0)
    rng = np.random.default_rng(11)
    model = SwinTransformer(**SPEC).eval()
    arrays = _randomize(model, rng)
    for case, (h, w) in CASES.items():
        image = rng.standard_normal((1, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            outs = model(torch.from_numpy(image))
        arrays[f"{case}/image"] = image
        for name, value in outs.items():
            arrays[f"{case}/{name}"] = value.numpy()
    np.savez_compressed(OUT, **arrays)
    print(f"{OUT}: {len(CASES)} cases, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()

"""Regenerate ``deform_conv_expected.npz`` with torchvision's ``deform_conv2d`` (torch needed).

    PYTHONPATH=. /path/to/detectron2-venv/bin/python -m tests.export_tools.modeling.make_deform_data

Detectron2's ``DeformConv`` runs exactly this op on CPU (its CUDA kernels, also the modulated
one, implement the same sampling); the cases cover stride, dilation, convolution groups,
deformable groups, the modulated mask and samples falling outside the input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "deform_conv_expected.npz"
# name -> (in_ch, out_ch, H, W, stride, dilation, groups, deform_groups, modulated)
CASES = {
    "plain": (8, 8, 9, 11, 1, 1, 1, 1, False),
    "stride2": (8, 6, 10, 7, 2, 1, 1, 1, False),
    "dilated": (8, 8, 9, 9, 1, 2, 1, 1, False),
    "grouped": (8, 8, 9, 9, 1, 1, 2, 1, False),
    "deform_groups": (8, 8, 9, 9, 1, 1, 1, 2, False),
    "modulated": (8, 8, 9, 10, 1, 1, 1, 1, True),
    "modulated_groups": (8, 4, 8, 8, 2, 1, 2, 2, True),
    "tiny": (4, 4, 1, 3, 1, 1, 1, 1, False),
}


def main() -> None:
    import torch
    from torchvision.ops import deform_conv2d

    rng = np.random.default_rng(7)
    arrays = {}
    for name, (c, o, h, w, s, dil, groups, dg, modulated) in CASES.items():
        ho, wo = (h + 2 * dil - 2 * dil - 1) // s + 1, (w + 2 * dil - 2 * dil - 1) // s + 1
        x = rng.standard_normal((1, c, h, w), dtype=np.float32)
        weight = rng.standard_normal((o, c // groups, 3, 3), dtype=np.float32)
        offset = (rng.standard_normal((1, dg * 18, ho, wo)) * 2.0).astype(np.float32)
        mask = rng.uniform(0, 1, (1, dg * 9, ho, wo)).astype(np.float32) if modulated else None
        y = deform_conv2d(torch.from_numpy(x), torch.from_numpy(offset), torch.from_numpy(weight),
                          stride=s, padding=dil, dilation=dil,
                          mask=None if mask is None else torch.from_numpy(mask)).numpy()
        arrays.update({f"{name}/x": x, f"{name}/weight": weight, f"{name}/offset": offset,
                       f"{name}/y": y})
        if mask is not None:
            arrays[f"{name}/mask"] = mask
    np.savez_compressed(OUT, **arrays)
    print(f"{OUT}: {len(CASES)} cases")


if __name__ == "__main__":
    main()

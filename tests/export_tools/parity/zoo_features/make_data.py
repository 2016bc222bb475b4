"""Regenerate the zoo-feature parity data with real Detectron2 (torch and detectron2 needed).

    PYTHONPATH=. /path/to/detectron2-venv/bin/python -m \
        tests.export_tools.parity.zoo_features.make_data --detectron2-src ../detectron2-src

For each model of :data:`models.MODELS`: the zoo config at narrow widths, weights from
:class:`models.FeatureWeights` loaded into Detectron2's own model, and ``DefaultPredictor``'s
``proposals`` / ``sem_seg`` on the shared fixture images, written to ``data/<model>/``
(``config.yaml`` as ``cfg.dump()`` writes it, ``expected_N.npz``, ``manifest.json``). Nothing of
Detectron2's code is copied; only its outputs are stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from tests.export_tools.parity.zoo_features.models import (
    IMAGES,
    MODELS,
    SMALL,
    FeatureWeights,
    checksum,
)

DATA = Path(__file__).resolve().parent / "data"


def our_state(config: Path, opts: list[str]) -> dict[str, np.ndarray]:
    from export_tools.config import load_config
    from export_tools.export import build_onnx_from_weights

    cfg = load_config(config, opts)
    weights = FeatureWeights.for_config(cfg)
    build_onnx_from_weights(cfg, weights)
    return weights.state_dict()


def detectron2_predictor(config: Path, opts: list[str], state: dict[str, np.ndarray]):
    import torch
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor

    cfg = get_cfg()
    cfg.merge_from_file(str(config))
    cfg.merge_from_list(opts)
    cfg.MODEL.DEVICE, cfg.MODEL.WEIGHTS = "cpu", ""
    predictor = DefaultPredictor(cfg)
    own = predictor.model.state_dict()
    stray = [k for k in state if k not in own and np.any(state[k])]
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items() if k in own}
    missing, unexpected = predictor.model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if k not in ("pixel_mean", "pixel_std")]
    if missing or unexpected or stray:
        raise SystemExit(f"{config}: weights do not fit: {missing[:5]} {unexpected[:5]} "
                         f"{stray[:5]}")
    return cfg, predictor


def expected_arrays(output: dict) -> dict[str, np.ndarray]:
    if "instances" in output:
        inst = output["instances"].to("cpu")
        return {"boxes": inst.pred_boxes.tensor.numpy().astype(np.float32),
                "scores": inst.scores.numpy().astype(np.float32),
                "classes": inst.pred_classes.numpy().astype(np.int64)}
    if "proposals" in output:
        p = output["proposals"].to("cpu")
        return {"proposal_boxes": p.proposal_boxes.tensor.numpy().astype(np.float32),
                "objectness_logits": p.objectness_logits.numpy().astype(np.float32)}
    logits = output["sem_seg"].to("cpu").numpy()
    top2 = np.sort(logits, axis=0)[-2:]
    return {"sem_seg_argmax": logits.argmax(axis=0).astype(np.uint8),
            "sem_seg_margin": (top2[1] - top2[0]).astype(np.float16)}


def make(name: str, src: Path, fixtures: Path) -> None:
    import cv2
    import detectron2
    import torch

    rel, extra = MODELS[name]
    config, opts = src / "configs" / rel, SMALL + extra
    state = our_state(config, opts)
    cfg, predictor = detectron2_predictor(config, opts, state)
    out = DATA / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(cfg.dump())
    counts = []
    for i, image in enumerate(IMAGES):
        bgr = cv2.imread(str(fixtures / image))
        with torch.no_grad():
            arrays = expected_arrays(predictor(bgr))
        np.savez_compressed(out / f"expected_{i}.npz", **arrays)
        counts.append({k: list(v.shape) for k, v in arrays.items()})
    manifest = {"model": name, "zoo_config": rel, "opts": opts, "images": list(IMAGES),
                "weights_sha256": checksum(state), "shapes": counts,
                "versions": {"detectron2": detectron2.__version__, "torch": torch.__version__}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{name}: {counts}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectron2-src", type=Path, required=True)
    parser.add_argument("--fixtures", type=Path, default=Path("../shared/fixtures"))
    parser.add_argument("models", nargs="*", default=list(MODELS))
    args = parser.parse_args(argv)
    for name in args.models:
        make(name, args.detectron2_src, args.fixtures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``d2stream bench`` on full-width LazyConfig models: R50-FPN LSJ, RegNetY-4GF LSJ, ViTDet-B.

The fixture configs (``shared/fixtures/lazy``, narrowed for small files) are widened back to the
model-zoo architectures (the edits below undo each fixture's ``manifest.json`` overrides), built
with synthetic weights (:class:`export_tools.perf.random_weights.SyntheticWeights`) and
benchmarked one after the other in one run. The LSJ test size of the zoo configs is 1024; ``--side``
sets the test-time resize and ViTDet's square padding together (512 by default, as the fixtures,
to keep the run short on a small machine)::

    python -m benchmarks.lazy_bench [--runs 3] [--threads 2] [--side 512]
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from collections.abc import Callable

import onnx

from benchmarks.bench_lib import CACHE, FIXTURES, _source_stamp
from export_tools.onnx_io import save_model

SIDE = 512
COCO_CLASSES = 80


def _heads(model: dict) -> None:
    """Model-zoo widths of the FPN, RPN and ROI heads (the fixtures narrowed them 4x)."""
    model["backbone"]["out_channels"] = 256
    model["proposal_generator"]["head"]["in_channels"] = 256
    heads = model["roi_heads"]
    heads["num_classes"] = COCO_CLASSES
    for key in ("box_predictor", "mask_head"):
        heads[key]["num_classes"] = COCO_CLASSES
    box = heads["box_head"]
    box["conv_dims"] = [256] * len(box["conv_dims"])
    box["fc_dims"] = [1024] * len(box["fc_dims"])
    heads["mask_head"]["conv_dims"] = [256] * len(heads["mask_head"]["conv_dims"])


def _r50(model: dict) -> None:
    up = model["backbone"]["bottom_up"]
    up["stem"]["out_channels"] = 64
    for stage in up["stages"]:
        for key in ("in_channels", "out_channels", "bottleneck_channels"):
            stage[key] *= 4


def _regnety_4gf(model: dict) -> None:
    model["backbone"]["bottom_up"].update(w_a=31.41, w_0=96, w_m=2.24, group_width=64,
                                          depth=22, stem_width=32, se_ratio=0.25)


def _vitdet_b(model: dict) -> None:
    model["backbone"]["net"].update(embed_dim=768, depth=12, num_heads=12,
                                    window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10])


MODELS: dict[str, tuple[str, Callable[[dict], None]]] = {
    "R50-FPN LSJ": ("mask_rcnn_R_50_FPN_100ep_LSJ", _r50),
    "RegNetY-4GF LSJ": ("mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ", _regnety_4gf),
    "ViTDet-B": ("mask_rcnn_vitdet_b_100ep", _vitdet_b),
}


def build_full_width(folder: str, widen: Callable[[dict], None],
                     side: int = SIDE) -> onnx.ModelProto:
    from export_tools.export import build_onnx_from_weights
    from export_tools.lazy.reader import read_lazy_yaml
    from export_tools.lazy.translate import lazy_tree_to_config
    from export_tools.perf.random_weights import SyntheticWeights

    tree = copy.deepcopy(read_lazy_yaml(FIXTURES / "lazy" / folder / "config.yaml"))
    widen(tree["model"])
    _heads(tree["model"])
    resize = tree["dataloader"]["test"]["mapper"]["augmentations"][0]
    resize.update(short_edge_length=side, max_size=side)
    if "square_pad" in tree["model"]["backbone"]:  # ViTDet: pre-training size = test size
        tree["model"]["backbone"]["square_pad"] = side
        tree["model"]["backbone"]["net"]["img_size"] = side
    # the LSJ heads' lambda norm is a batch norm: say so as a checkpoint would
    stats = {f"roi_heads.{m}.{s}": 0 for m in ("box_head.conv1.norm", "mask_head.mask_fcn1.norm")
             for s in ("running_mean", "running_var")}
    cfg = lazy_tree_to_config(tree, stats, f"{folder} (full width)")
    return build_onnx_from_weights(cfg, SyntheticWeights.for_config(cfg), model_name=folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--side", type=int, default=SIDE)
    args = parser.parse_args(argv)
    out_dir = CACHE / "lazy"
    out_dir.mkdir(parents=True, exist_ok=True)
    for label, (folder, widen) in MODELS.items():
        path = out_dir / f"{folder}_full{args.side}_{_source_stamp()}.onnx"
        if not path.is_file():
            save_model(build_full_width(folder, widen, args.side), path)
        sys.stdout.write(f"## {label}\n")
        sys.stdout.flush()
        subprocess.run([sys.executable, "-m", "daemon.cli.main", "bench", str(path),
                        "--size", f"{args.side}x{args.side}", "--runs", str(args.runs), "--warmup",
                        str(args.warmup), "--threads", str(args.threads)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

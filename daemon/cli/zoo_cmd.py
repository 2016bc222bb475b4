"""``d2stream zoo list|show|download|export``: the official Detectron2 models by name.

``export`` writes the ONNX model (default: into the cache, where a daemon config naming
``zoo:NAME`` finds it). These commands import ``export_tools`` and run on a desktop; the
download itself needs only the standard library.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from d2common.errors import D2StreamError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    lst = sub.add_parser("list", help="list the model-zoo names d2stream can export")
    lst.add_argument("pattern", nargs="?", default="", help="only names containing this")
    show = sub.add_parser("show", help="print an entry: URL, checksum, config overrides")
    show.add_argument("name")
    for action, text in (("download", "download the weights into the cache"),
                         ("export", "download and export to ONNX")):
        p = sub.add_parser(action, help=text)
        p.add_argument("name", help="e.g. COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x")
        p.add_argument("--base-url", help="mirror to download from (default: $D2STREAM_ZOO_URL "
                       "or Detectron2's server)")
        p.add_argument("--offline", action="store_true", default=None,
                       help="use only the cache (also: D2STREAM_OFFLINE=1)")
        p.add_argument("--no-progress", action="store_true")
        if action == "export":
            p.add_argument("-o", "--output", type=Path, help="ONNX path (default: the cache)")


def run(args: argparse.Namespace) -> int:
    try:
        return _ACTIONS[args.action](args)
    except D2StreamError as exc:
        logger.error("%s", exc)
        return exc.exit_code


def _list(args: argparse.Namespace) -> int:
    from export_tools.zoo import all_entries  # noqa: PLC0415

    for name, entry in all_entries().items():
        if args.pattern.lower() in name.lower():
            kind = " LazyConfig" if entry.is_lazy else ""
            refused = f"  not exportable: {entry.refused}" if entry.refused else ""
            print(f"{name:<58} {entry.dataset}{kind}{refused}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from export_tools.zoo import get_entry  # noqa: PLC0415

    entry = get_entry(args.name)
    print(f"name:     {entry.name}\nurl:      {entry.url()}\ndataset:  {entry.dataset}")
    print(f"checksum: {'sha256 ' + entry.sha256 if entry.sha256 else ''}"
          f"{'md5 prefix ' + entry.md5_prefix if entry.md5_prefix and not entry.sha256 else ''}")
    if entry.refused:
        print(f"refused:  {entry.refused}")
    if entry.is_lazy:
        print("config (LazyConfig: model and test-time input, as LazyConfig.save writes them):")
    else:
        print("config (keys that differ from Detectron2's defaults):")
    print(entry.config_text().rstrip())
    return 0


def _download(args: argparse.Namespace) -> int:
    from export_tools.zoo import fetch_weights, get_entry  # noqa: PLC0415

    path = fetch_weights(get_entry(args.name), base_url=args.base_url, offline=args.offline,
                         progress=not args.no_progress)
    print(path)
    return 0


def _export(args: argparse.Namespace) -> int:
    from export_tools.zoo import export_zoo_model  # noqa: PLC0415

    path = export_zoo_model(args.name, args.output, base_url=args.base_url,
                            offline=args.offline, progress=not args.no_progress)
    print(path)
    return 0


def export_from_zoo(name: str, output: Path) -> int:
    """``d2stream export --model-zoo NAME -o OUT``: same as ``d2stream zoo export``."""
    args = argparse.Namespace(action="export", name=name, output=output, base_url=None,
                              offline=None, no_progress=False)
    return run(args)


_ACTIONS = {"list": _list, "show": _show, "download": _download, "export": _export}

"""``d2stream`` entry point: one subcommand per module, imported only when chosen.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``. Modules are
listed by dotted name so that ``export`` (which needs ``export_tools`` and onnx) is never
imported on the device unless the user asks for it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from d2common.errors import D2StreamError
from daemon import __version__

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "export": ("daemon.cli.export_cmd", "export a Detectron2 config + checkpoint to ONNX"),
    "predict": ("daemon.cli.predict_cmd", "run an exported model on image files or folders"),
    "bench": ("daemon.cli.bench_cmd", "measure latency and memory of an exported model"),
}  # further subcommands are registered below, one line each
SUBCOMMANDS["eval"] = ("daemon.cli.eval_cmd", "COCO box/mask/keypoint AP of an exported model")
SUBCOMMANDS["verify"] = ("daemon.cli.verify_cmd", "compare an exported model with Detectron2's")
SUBCOMMANDS["zoo"] = ("daemon.cli.zoo_cmd", "list, download, export official Detectron2 models")
SUBCOMMANDS["run"] = ("daemon.cli.run_cmd", "run the camera daemon with a YAML config")
SUBCOMMANDS["check-config"] = ("daemon.cli.check_config_cmd", "validate a daemon YAML config")
SUBCOMMANDS["serve"] = ("daemon.cli.serve_cmd", "serve a model over the Open Inference Protocol")
SUBCOMMANDS["demo-video"] = ("daemon.cli.demo_video_cmd", "write a video of moving shapes")

# What `d2stream --help` says: written for users (the module docstring is for developers).
DESCRIPTION = """\
Run Detectron2 models on small CPU machines without torch: export a trained model to ONNX,
run it on images, and run an always-on camera daemon (events, snapshots, MQTT, a live view).

First steps:
  d2stream export --config-file config.yaml --weights model_final.pth --output model.onnx
  d2stream predict model.onnx photo.jpg --output-dir annotated/
  d2stream run --config config.yaml

'd2stream COMMAND --help' shows the options of one command."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="d2stream", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"d2stream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _subcommand_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(SUBCOMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"d2stream {name}", description=SUBCOMMANDS[name][1])
    module.add_arguments(parser)
    return parser, module


def setup_logging(verbose: bool) -> None:
    """Log to stderr in a journald-friendly format (no timestamps: journald adds them)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    # Split global options from the subcommand and its own arguments.
    idx = next((i for i, a in enumerate(argv) if a in SUBCOMMANDS), None)
    if idx is None:
        top.parse_args(argv)  # prints usage / version / help and exits
        return EXIT_USAGE
    global_args = top.parse_args([*argv[:idx], argv[idx]])
    setup_logging(global_args.verbose)
    parser, module = _subcommand_parser(argv[idx])
    args = parser.parse_args(argv[idx + 1 :])
    try:
        return int(module.run(args))  # type: ignore[attr-defined]
    except D2StreamError as exc:  # a user-facing error a command let through: one line
        logging.getLogger(module.__name__).error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

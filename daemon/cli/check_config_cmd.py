"""``d2stream check-config FILE``: validate a daemon config without starting anything.

Prints a one-line summary and exits 0, or prints one line naming the key and the problem and
exits 78 (EX_CONFIG).
"""

from __future__ import annotations

import argparse
import sys

from daemon.config import ConfigError, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="FILE", help="daemon YAML config")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.exit_code
    cameras = ", ".join(f"{c.name} ({c.source.type})" for c in config.enabled_cameras())
    outputs = [name for name in ("event_log", "mqtt", "snapshots", "http", "preview")
               if getattr(config.outputs, name).enabled]
    sys.stdout.write(f"{args.config}: OK; model {config.model.path}; cameras: {cameras}; "
                     f"outputs: {', '.join(outputs) or 'none'}\n")
    return 0

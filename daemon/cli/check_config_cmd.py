"""``d2stream check-config FILE``: validate a daemon config without starting anything.

Checks the keys, the files the config names and that every path the daemon will write (event
log, MQTT outbox, snapshots, caches) is writable or can be created by the user running it.
Prints a one-line summary and the written paths and exits 0, or prints one line naming the key
and the problem and exits 78 (EX_CONFIG).

``--state-dir`` / ``--cache-dir`` check as the service will run: relative state and cache
paths taken from these folders, as from systemd's ``$STATE_DIRECTORY`` / ``$CACHE_DIRECTORY``.
"""

from __future__ import annotations

import argparse
import os
import sys

from daemon.config import ConfigError, load_config
from daemon.config.path_types import CACHE_ENV, STATE_ENV
from daemon.config.writable import check_writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="FILE", help="daemon YAML config")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="as $STATE_DIRECTORY under systemd (the unit: /var/lib/d2stream)")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="as $CACHE_DIRECTORY under systemd (the unit: /var/cache/d2stream)")


def run(args: argparse.Namespace) -> int:
    for variable, value in ((STATE_ENV, args.state_dir), (CACHE_ENV, args.cache_dir)):
        if value:
            os.environ[variable] = os.path.abspath(value)
    try:
        config = load_config(args.config)
        written = check_writable(config, file=args.config)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.exit_code
    cameras = ", ".join(f"{c.name} ({c.source.type})" for c in config.enabled_cameras())
    outputs = [name for name in ("event_log", "mqtt", "snapshots", "http", "preview")
               if getattr(config.outputs, name).enabled]
    sys.stdout.write(f"{args.config}: OK; model {config.model.path}; cameras: {cameras}; "
                     f"outputs: {', '.join(outputs) or 'none'}\n")
    for item in written:
        sys.stdout.write(f"  writes {item.key}: {item.path}\n")
    return 0

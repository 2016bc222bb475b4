"""``d2stream run --config FILE``: run the camera daemon until SIGTERM or the sources end.

Exit status: 0 after a clean stop, 78 (EX_CONFIG) for a config that cannot work (systemd does
not restart it: ``RestartPreventExitStatus=78``), 1 for other failures.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from pathlib import Path

from d2common.errors import D2StreamError
from daemon.config import ConfigError, load_config
from daemon.service.journal import configure_logging
from daemon.service.signals import install_stop_handlers

log = logging.getLogger("daemon.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, metavar="FILE",
                        help="daemon YAML config (see config.yaml at the repository root)")
    parser.add_argument("--stats-json", metavar="FILE", type=Path,
                        help="write the run's final statistics (fps, latency, drops, peak RSS) "
                             "as JSON when it ends")


def _error(exc: D2StreamError, config_path: str) -> int:
    message = str(exc)
    if isinstance(exc, ConfigError) and exc.file is None:
        message = f"{config_path}: {message}"
    log.error("%s", message)
    return exc.exit_code


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _error(exc, args.config)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        configure_logging(config.log_level)
    else:
        configure_logging(logging.DEBUG)
    from daemon.pipeline.runner import Pipeline  # noqa: PLC0415 - after logging is set up

    stop = threading.Event()
    restore = install_stop_handlers(stop)
    pipeline = Pipeline(config, stop=stop)
    try:
        code = pipeline.run()
    except D2StreamError as exc:
        code = _error(exc, args.config)
    finally:
        restore()
    if args.stats_json is not None:
        stats = {"exit_code": code, "peak_rss_kb": pipeline.peak_rss_kb,
                 **pipeline.metrics.snapshot()}
        args.stats_json.write_text(json.dumps(stats, indent=2, default=str), encoding="utf-8")
    return code

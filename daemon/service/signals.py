"""Signal handling for ``d2stream run``: SIGTERM/SIGINT request a clean stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)


def install_stop_handlers(stop: threading.Event) -> Callable[[], None]:
    """Make SIGTERM and SIGINT set ``stop`` (main thread only); returns a function that puts the
    previous handlers back. SIGHUP is logged and ignored (restart the service to reload)."""

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        log.info("SIGHUP ignored: restart the service to apply a new config")

    previous = {sig: signal.signal(sig, handler)
                for sig, handler in ((signal.SIGTERM, on_stop), (signal.SIGINT, on_stop),
                                     (signal.SIGHUP, on_hup))}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore

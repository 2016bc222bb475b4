"""Print the live-view URL once the daemon's HTTP server answers on it (used by .ci/demo.sh).

Usage: python .ci/live_view_url.py PORT PID -- waits while process PID lives; prints nothing if
it ends first. Any HTTP answer counts (a 401 means the view is up and wants credentials).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request


def served(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # the server answered
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def main() -> int:
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    url = f"http://127.0.0.1:{port}/"
    while alive(pid):
        if served(url):
            print(f"live view: {url}  (the daemon runs until Ctrl-C)", flush=True)
            return 0
        time.sleep(0.3)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C in the terminal reaches this helper too
        sys.exit(0)

"""A real HTTP file server on 127.0.0.1 for download tests: Range support, scripted failures."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class ServerScript:
    """What the server does; tests change it between requests."""

    truncate_after: dict[str, list[int]] = field(default_factory=dict)  # url path -> byte counts
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


class FileServer:
    """Serve ``root`` over HTTP/1.0; ``url(rel)`` gives the address of a file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.script = ServerScript()
        handler = _make_handler(root, self.script)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def url(self, rel: str) -> str:
        return self.base_url + rel.lstrip("/")

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _make_handler(root: Path, script: ServerScript) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            pass

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            rng = self.headers.get("Range")
            script.requests.append((self.path, rng))
            path = (root / self.path.lstrip("/")).resolve()
            if root.resolve() not in path.parents or not path.is_file():
                self.send_error(404, "Not Found")
                return
            data = path.read_bytes()
            start = _range_start(rng) if rng and not script.ignore_range else None
            if start is not None and start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if start is not None:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                data = data[start:]
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            cuts = script.truncate_after.get(self.path)
            if cuts:
                data = data[: cuts.pop(0)]  # close mid-body: the client sees a short read
            self.wfile.write(data)

    return Handler


def _range_start(header: str) -> int | None:
    match = re.fullmatch(r"bytes=(\d+)-", header.strip())
    return int(match.group(1)) if match else None

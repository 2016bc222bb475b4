"""An Open Inference Protocol (KServe v2) REST server hosting one exported ``.onnx`` model.

Routes (the protocol's HTTP/REST API):

- ``GET /v2/health/live``, ``GET /v2/health/ready``: 200 when live / when the model is loaded;
- ``GET /v2``: server metadata (name, version, extensions: ``binary_tensor_data``);
- ``GET /v2/models/<name>[/versions/<v>]``: model metadata; the d2stream metadata of the model
  (class names, input format, sizes) are its ``parameters``;
- ``GET /v2/models/<name>[/versions/<v>]/ready``; ``.../config`` (Triton-style configuration);
- ``POST /v2/models/<name>[/versions/<v>]/infer``: JSON tensors or binary tensor data.

The model runs one request at a time (ONNX Runtime uses every core for one inference); at
most ``max_queue`` requests wait, a further one gets ``503`` with ``Retry-After`` at once, so
that clients back off instead of piling up.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import numpy as np

from d2common import __version__
from d2common.errors import D2StreamError
from daemon.inference.backends import Backend
from daemon.inference.oip_codec import HEADER_LENGTH, datatype_of, decode, encode
from daemon.sinks.http_guard import Credentials, RejectionLog
from daemon.sinks.http_server import GuardedHandler, GuardedHTTPServer

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024 * 1024
VERSION = "1"


class ModelHost:
    """The hosted model: its metadata and a serialised ``infer``."""

    def __init__(self, name: str, backend: Backend, input_names: list[str],
                 max_queue: int = 8) -> None:
        self.name = name
        self.backend = backend
        self.input_names = input_names
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_queue + 1)
        self.counts = {"infer": 0, "busy": 0, "bad_request": 0}

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "versions": [VERSION], "platform": "onnxruntime_onnx",
                "inputs": [{"name": n, "datatype": "FP32", "shape": [1, 3, -1, -1]}
                           for n in self.input_names],
                "outputs": [{"name": n, "datatype": "FP32", "shape": [-1]}
                            for n in self.backend.output_names],
                "parameters": dict(self.backend.metadata_props)}

    def config(self) -> dict[str, Any]:
        """The model configuration as Triton's ``GET /v2/models/<name>/config`` gives it."""
        return {"name": self.name, "platform": "onnxruntime_onnx", "max_batch_size": 0,
                "parameters": {k: {"string_value": v}
                               for k, v in self.backend.metadata_props.items()}}

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """The outputs, or None when too many requests already wait."""
        if not self._slots.acquire(blocking=False):
            self.counts["busy"] += 1
            return None
        try:
            with self._lock:
                self.counts["infer"] += 1
                return self.backend.run(feeds)
        finally:
            self._slots.release()


class OipHandler(GuardedHandler):
    """One request; ``server.host`` and ``server.credentials`` are set by :func:`make_server`.

    Like the live view's (``GuardedHTTPServer``): a request must be complete within the
    whole-request deadline, slow unauthenticated clients cannot hold the threads an
    authenticated one needs, and only an authorised request takes a work slot."""

    protocol_version = "HTTP/1.1"
    server_version = "d2stream-oip"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, extra: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), extra)

    def _error(self, status: int, message: str, extra: dict[str, str] | None = None) -> None:
        self._json(status, {"error": message}, extra)

    def _authorised(self) -> bool:
        creds: Credentials = self.server.credentials  # type: ignore[attr-defined]
        path, _, query = self.path.partition("?")
        if creds.allows(self.headers.get("Authorization"), query):
            return True
        self._error(401, "missing or wrong credentials",
                    {"WWW-Authenticate": creds.challenge()})
        return False

    def _model_route(self) -> tuple[str, str] | None:
        """(suffix, error) for a /v2/models/<name>[/versions/<v>][/suffix] path, else None."""
        host: ModelHost = self.server.host  # type: ignore[attr-defined]
        parts = self.path.partition("?")[0].strip("/").split("/")
        if parts[:2] != ["v2", "models"] or len(parts) < 3:
            return None
        if parts[2] != host.name:
            return "", f"unknown model {parts[2]!r}; this server hosts {host.name!r}"
        rest = parts[3:]
        if rest[:1] == ["versions"]:
            if len(rest) < 2 or rest[1] != VERSION:
                return "", f"model {host.name!r} has only version {VERSION}"
            rest = rest[2:]
        return "/".join(rest), ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guarded(self._post)

    def _guarded(self, route: Any) -> None:
        if not self._authorised():
            return
        if not self.take_work_slot():
            self._error(503, "too many clients; retry", {"Retry-After": "1"})
            return
        try:
            route()
        finally:
            self.release_work_slot()

    def _get(self) -> None:
        host: ModelHost = self.server.host  # type: ignore[attr-defined]
        path = self.path.partition("?")[0].rstrip("/")
        if path in ("/v2/health/live", "/v2/health/ready"):
            self._json(200, {"live": True} if path.endswith("live") else {"ready": True})
        elif path == "/v2":
            self._json(200, {"name": "d2stream", "version": __version__,
                             "extensions": ["binary_tensor_data"]})
        elif path == "/metrics":
            self._json(200, host.counts)
        else:
            route = self._model_route()
            if route is None or route[1]:
                self._error(404, route[1] if route else f"no route {path}")
            elif route[0] == "":
                self._json(200, host.metadata())
            elif route[0] == "config":  # Triton's model configuration endpoint
                self._json(200, host.config())
            elif route[0] == "ready":
                self._json(200, {"name": host.name, "ready": True})
            else:
                self._error(404, f"no route {path}")

    def _post(self) -> None:
        route = self._model_route()
        if route is None or route[1] or route[0] != "infer":
            self._error(404, route[1] if route and route[1] else f"no route {self.path}")
            return
        try:
            length = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._error(400 if length < 0 else 413, f"Content-Length must be 0..{MAX_BODY}")
            return
        self._infer(self.rfile.read(length))

    def _infer(self, body: bytes) -> None:
        host: ModelHost = self.server.host  # type: ignore[attr-defined]
        header_length = self.headers.get(HEADER_LENGTH)
        try:
            request, feeds = decode(body, int(header_length) if header_length else None,
                                    "inputs", f"request to model {host.name!r}")
            _check_inputs(feeds, host.input_names)
            outputs = host.infer(feeds)
        except (D2StreamError, ValueError) as exc:
            host.counts["bad_request"] += 1
            self._error(400, str(exc))
            return
        except Exception as exc:  # the engine refused the tensor: the client's input
            host.counts["bad_request"] += 1
            self._error(400, f"model {host.name!r} cannot run this input ({exc})")
            return
        if outputs is None:
            self._error(503, "server busy; retry", {"Retry-After": "1"})
            return
        self._answer(request, outputs)

    def _answer(self, request: dict[str, Any], outputs: dict[str, np.ndarray]) -> None:
        host: ModelHost = self.server.host  # type: ignore[attr-defined]
        wanted = request.get("outputs") or []
        binary = bool(wanted) and all((w.get("parameters") or {}).get("binary_data")
                                      for w in wanted if isinstance(w, dict))
        names = [w["name"] for w in wanted if isinstance(w, dict) and "name" in w] or \
            list(outputs)
        unknown = [n for n in names if n not in outputs]
        if unknown:
            self._error(400, f"model {host.name!r} has no output {unknown[0]!r}")
            return
        body, header_length = encode({n: outputs[n] for n in names}, "outputs", binary,
                                     {"model_name": host.name, "model_version": VERSION,
                                      "id": request.get("id", "")})
        extra = {HEADER_LENGTH: str(header_length)} if header_length is not None else None
        self._send(200, body, extra,
                   "application/octet-stream" if header_length is not None else
                   "application/json")


def _check_inputs(feeds: dict[str, np.ndarray], names: list[str]) -> None:
    if sorted(feeds) != sorted(names):
        raise ValueError(f"inputs must be {names}, got {sorted(feeds)}")
    for name, array in feeds.items():
        if datatype_of(array) != "FP32" or array.ndim != 4 or array.shape[:2] != (1, 3):
            raise ValueError(f"input {name!r} must be FP32 [1, 3, H, W], got "
                             f"{datatype_of(array)} {list(array.shape)}")


def make_server(host: ModelHost, address: tuple[str, int], credentials: Credentials,
                max_connections: int = 64, client_timeout_s: float = 10.0) -> GuardedHTTPServer:
    """A bound server (call ``serve_forever``): at most ``max_connections`` wait for their
    request and as many are served; a request not complete ``client_timeout_s`` after it began
    is cut (each read of a body too)."""
    handler = type("Handler", (OipHandler,), {"timeout": client_timeout_s})
    rejections = RejectionLog(what="serve")
    server = GuardedHTTPServer(address[0], address[1], handler, max_connections,
                               client_timeout_s, rejections.reject)
    server.rejections = rejections  # type: ignore[attr-defined]
    server.host = host  # type: ignore[attr-defined]
    server.credentials = credentials  # type: ignore[attr-defined]
    return server

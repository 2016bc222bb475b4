"""``remote`` backend: the network runs on an Open Inference Protocol (KServe v2) server.

The daemon still pre-processes (resize, normalise layout) and post-processes (rescale, paste
masks, decode keypoints) locally; only the network input tensor ``image`` travels, as binary
tensor data, and the raw graph outputs come back. So results equal local inference exactly
when the server runs the same ``.onnx`` file with the same engine.

At load the backend reads the server's model metadata (``GET /v2/models/<name>``): the d2stream
metadata (class names, input format, sizes) are its ``parameters``. When a local model file is
given (``model.path``) its metadata must be identical, otherwise loading fails naming server and
model. Requests that fail (connection refused, timeout, 429/503) are retried with doubling
back-off; when all attempts fail the frame fails (``fallback: drop``) or runs on the local model
(``fallback: local``).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from d2common.errors import ModelError
from daemon.inference.backends.base import Backend, BackendOptions, RemoteOptions
from daemon.inference.oip_codec import HEADER_LENGTH, decode, encode

log = logging.getLogger(__name__)

RETRYABLE_STATUS = (429, 502, 503, 504)
# no proxy from the environment: the server is addressed directly
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RemoteError(ModelError):
    """The server could not answer (after the retries)."""


class RemoteBackend:
    """A model hosted by an Open Inference Protocol server."""

    name = "remote"

    def __init__(self, model_path: str | os.PathLike, options: BackendOptions) -> None:
        if options.remote is None:
            raise ModelError("backend 'remote' needs model.remote settings (url, model_name)")
        self.remote: RemoteOptions = options.remote
        self.where = f"server {self.remote.url} model {self.remote.model_name!r}"
        base = f"{self.remote.url.rstrip('/')}/v2/models/{self.remote.model_name}"
        if self.remote.model_version:
            base += f"/versions/{self.remote.model_version}"
        self._model_url = base
        self._local: Backend | None = None
        self._local_path = Path(model_path) if model_path else None
        self._local_options = BackendOptions(options.num_threads, options.optimized_cache,
                                             options.spin_wait,
                                             spin_after_run=options.spin_after_run)
        self.stats = {"requests": 0, "retries": 0, "failures": 0, "fallbacks": 0}
        meta = self._metadata(self._model_url)
        params = meta.get("parameters")
        if not params:  # Triton: config parameters are only in the model configuration
            params = config_parameters(self._metadata(f"{self._model_url}/config"))
        self.metadata_props: dict[str, str] = {str(k): str(v) for k, v in params.items()}
        self.output_names = [str(o["name"]) for o in meta.get("outputs", [])
                             if isinstance(o, dict) and "name" in o]
        for needed in ("boxes", "scores", "classes"):
            if needed not in self.output_names:
                raise ModelError(f"{self.where}: the model has no output {needed!r} "
                                 f"(outputs: {', '.join(self.output_names) or 'none'})")
        self._check_against_local()

    def _metadata(self, url: str) -> dict[str, Any]:
        status, body, _ = self._request("GET", url, None, {})
        if status != 200:
            raise ModelError(f"{self.where}: model metadata answered HTTP {status} "
                             f"({body[:120].decode(errors='replace').strip()})")
        try:
            meta = json.loads(body)
        except ValueError as exc:
            raise ModelError(f"{self.where}: model metadata is not JSON") from exc
        if not isinstance(meta, dict):
            raise ModelError(f"{self.where}: model metadata is not a JSON object")
        return meta

    def _check_against_local(self) -> None:
        if self._local_path is None or not self._local_path.is_file():
            if self.remote.fallback == "local":
                raise ModelError(f"model.remote.fallback is 'local' but model.path "
                                 f"{self._local_path} is not a file")
            return
        local = self._local_backend()
        if dict(local.metadata_props) != self.metadata_props:
            differing = sorted(k for k in set(local.metadata_props) | set(self.metadata_props)
                               if local.metadata_props.get(k) != self.metadata_props.get(k))
            raise ModelError(f"{self.where}: metadata differs from {self._local_path} "
                             f"({', '.join(differing)}); refusing to run")

    def _local_backend(self) -> Backend:
        if self._local is None:
            from daemon.inference.backends.base import create_backend  # noqa: PLC0415

            self._local = create_backend("onnxruntime", self._local_path, self._local_options)
        return self._local

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        body, header_length = encode(feeds, "inputs", binary=True, extra={"outputs": [
            {"name": n, "parameters": {"binary_data": True}} for n in self.output_names]})
        headers = {"Content-Type": "application/octet-stream",
                   HEADER_LENGTH: str(header_length)}
        try:
            return self._infer(body, headers)
        except RemoteError as exc:
            self.stats["failures"] += 1
            if self.remote.fallback != "local":
                raise
            self.stats["fallbacks"] += 1
            log.warning("%s; inferring this frame with the local model", exc)
            return self._local_backend().run(feeds)

    def _infer(self, body: bytes, headers: dict[str, str]) -> dict[str, np.ndarray]:
        delay = self.remote.backoff_s
        last = ""
        for attempt in range(self.remote.retries + 1):
            if attempt:
                self.stats["retries"] += 1
                time.sleep(delay)
                delay *= 2
            self.stats["requests"] += 1
            try:
                status, answer, got = self._request("POST", f"{self._model_url}/infer", body,
                                                    headers)
            except RemoteError as exc:
                last = str(exc)
                continue
            if status == 200:
                length = got.get(HEADER_LENGTH.lower())
                _, outputs = decode(answer, int(length) if length else None, "outputs",
                                    self.where)
                return outputs
            last = f"{self.where}: HTTP {status} " \
                   f"({answer[:120].decode(errors='replace').strip()})"
            if status not in RETRYABLE_STATUS:
                raise ModelError(last)
        raise RemoteError(f"{last} after {self.remote.retries + 1} attempts")

    def _request(self, method: str, url: str, body: bytes | None,
                 headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        headers = dict(headers)
        if self.remote.token:
            headers["Authorization"] = f"Bearer {self.remote.token}"
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with _OPENER.open(request, timeout=self.remote.timeout_s) as response:
                got = {k.lower(): v for k, v in response.headers.items()}
                return response.status, response.read(), got
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), {}
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(f"{self.where}: unreachable ({reason})") from exc


def config_parameters(config: dict[str, Any]) -> dict[str, str]:
    """The string parameters of a Triton model configuration (``GET .../config``), whose
    ``parameters`` map each key to ``{"string_value": ...}``."""
    params = config.get("parameters") or {}
    if not isinstance(params, dict):
        return {}
    return {str(k): str(v["string_value"]) for k, v in params.items()
            if isinstance(v, dict) and "string_value" in v}


def load(model_path: str | os.PathLike, options: BackendOptions) -> RemoteBackend:
    return RemoteBackend(model_path, options)

"""``d2stream serve MODEL.onnx``: host an exported model over the Open Inference Protocol.

Binds 127.0.0.1 unless ``--host`` says otherwise; on any other address a token is required
(``--token`` or the ``D2STREAM_SERVE_TOKEN`` environment variable), as for the live view.
See docs/scaling-out.md.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os

from d2common.errors import ModelError
from daemon.cli.oip_server import ModelHost, make_server
from daemon.inference.backends import BackendOptions, create_backend
from daemon.sinks.http_guard import Credentials

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="an .onnx file written by d2stream export")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (8000; 0: any free)")
    parser.add_argument("--model-name", help="name in /v2/models/<name> (the file's stem)")
    parser.add_argument("--token", help="bearer token clients must send "
                                        "(default: $D2STREAM_SERVE_TOKEN)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads")
    parser.add_argument("--max-queue", type=int, default=8,
                        help="requests that may wait for the model; more get 503 (8)")
    parser.add_argument("--client-timeout", type=float, default=10.0,
                        help="seconds a client has to send a whole request (10)")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("D2STREAM_SERVE_TOKEN") or None
    if not _loopback(args.host) and token is None:
        raise ModelError(f"--host {args.host} exposes the server: set --token or "
                         "D2STREAM_SERVE_TOKEN")
    backend = create_backend("onnxruntime", args.model, BackendOptions(args.threads))
    name = args.model_name or os.path.splitext(os.path.basename(args.model))[0]
    inputs = [i.name for i in backend.session.get_inputs()]  # type: ignore[attr-defined]
    host = ModelHost(name, backend, inputs, max(0, args.max_queue))
    if not args.client_timeout > 0:
        raise ModelError(f"--client-timeout must be > 0, got {args.client_timeout}")
    server = make_server(host, (args.host, args.port), Credentials(token=token),
                         client_timeout_s=args.client_timeout)
    # one line on stdout-free stderr that scripts (and the tests) read for the bound port
    log.info("serving model %r on http://%s:%d/v2", name, args.host, server.server_address[1])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0

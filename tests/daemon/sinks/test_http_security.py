"""Live-view HTTP server under attack or abuse: a real server on 127.0.0.1, real sockets.

Credentials (token, basic auth, the ``?token=`` of the page) on every route, a config error when
bound beyond loopback without them, no file served whatever the path, at most ``max_clients``
streams and ``max_connections`` connections, and a viewer that stops reading is dropped after
``client_timeout_s`` while frames keep being handled.
"""

from __future__ import annotations

import base64
import http.client
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from daemon.config import ConfigError, parse_config
from daemon.config.schema import DrawSection, HttpOutput, is_loopback
from daemon.inference.predictor import CompactPrediction
from daemon.sinks.http_guard import Credentials
from daemon.sinks.http_view import HttpSink
from daemon.structures.frame import Frame
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult, ModelInfo
from tests.daemon.daemon_helpers import wait_until

TOKEN = "s3cret-token-0123456789"
MODEL = ModelInfo("m", ["square"], [], [], 240, 320)


def result(seq: int, size: tuple[int, int] = (240, 320), seed: int = 0) -> FrameResult:
    """A frame of noise (JPEGs that do not compress: socket buffers fill quickly)."""
    image = np.random.default_rng(seed + seq).integers(0, 255, (*size, 3), dtype=np.uint8)
    empty = CompactPrediction(size, np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                              np.zeros(0, np.int64))
    return FrameResult(Frame.now("cam", seq, image), empty, MODEL, 0.01, time.monotonic())


@contextmanager
def server(**http: object) -> Iterator[HttpSink]:
    config = HttpOutput(enabled=True, port=0, **http)
    metrics = Metrics()
    metrics.set_ready()
    metrics.worker_started(1, restarted=False)  # /healthz answers 200 "ok"
    sink = HttpSink(config, DrawSection(), ["cam"], 2, metrics)
    sink.start()
    try:
        sink.handle(result(0))
        yield sink
    finally:
        sink.stop(5.0)


def get(sink: HttpSink, path: str, headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        if response.getheader("Content-Type", "").startswith("multipart/"):
            body = response.read(64)
        else:
            body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


ROUTES = ["/", "/healthz", "/metrics", "/snapshot/cam.jpg", "/stream/cam.mjpg"]


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_no_credentials_configured_on_loopback_serves_everything() -> None:
    with server() as sink:
        assert [get(sink, route)[0] for route in ROUTES] == [200] * len(ROUTES)


@pytest.mark.parametrize("route", ROUTES)
def test_token_is_required_on_every_route(route: str) -> None:
    with server(token=TOKEN) as sink:
        status, headers, _ = get(sink, route)
        assert status == 401 and headers["www-authenticate"].startswith("Bearer")
        for bad in ("Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ",
                    f"Basic {TOKEN}", TOKEN):
            assert get(sink, route, {"Authorization": bad})[0] == 401, bad
        assert get(sink, f"{route}?token=nope")[0] == 401
        assert get(sink, f"{route}?token={TOKEN}&token={TOKEN}")[0] == 401
        assert get(sink, route, {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert get(sink, route, {"Authorization": f"bearer  {TOKEN}"})[0] == 200
        assert get(sink, f"{route}?token={TOKEN}")[0] == 200
        rejected = sink.metrics.snapshot()["faults"]["http"]["rejected"]
        assert rejected["auth"] == 9


def test_basic_auth_and_the_page_keeps_a_token_query() -> None:
    with server(username="viewer", password="correct horse") as sink:
        status, headers, _ = get(sink, "/metrics")
        assert status == 401 and headers["www-authenticate"].startswith('Basic realm="d2stream"')
        for user, password in (("viewer", "wrong"), ("other", "correct horse"),
                               ("viewer", "correct hors"), ("viewer:correct", "horse")):
            assert get(sink, "/metrics", basic(user, password))[0] == 401
        assert get(sink, "/metrics", {"Authorization": "Basic !!notbase64"})[0] == 401
        assert get(sink, "/metrics", basic("viewer", "correct horse"))[0] == 200
    with server(token=TOKEN) as sink:
        status, _, page = get(sink, f"/?token={TOKEN}")
        assert status == 200
        assert f'src="stream/cam.mjpg?token={TOKEN}"'.encode() in page
        assert f'fetch("healthz?token={TOKEN}"'.encode() in page


def test_credentials_compare_every_part() -> None:
    both = Credentials(TOKEN, "u", "password1")
    assert both.allows(f"Bearer {TOKEN}", "") and both.allows(None, f"token={TOKEN}")
    assert both.allows("Basic " + base64.b64encode(b"u:password1").decode(), "")
    assert not both.allows("Basic " + base64.b64encode(b"u:password2").decode(), "")
    assert not both.allows("Digest x", "") and not both.allows(None, "")
    assert Credentials().allows(None, "") and not Credentials().required


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "cam.local"])
def test_binding_beyond_loopback_needs_credentials(host: str) -> None:
    text = ("model: {path: m.onnx}\ncameras: [{name: a, source: {type: opencv, url: 0}}]\n"
            f"outputs: {{http: {{enabled: true, host: '{host}'}}}}\n")
    with pytest.raises(ConfigError) as err:
        parse_config(text, name="c.yaml", check_files=False)
    assert str(err.value).startswith("c.yaml: outputs.http: host ")
    assert "token" in str(err.value)
    fixed = text.replace("'}}", f"', token: {TOKEN}}}}}")
    assert parse_config(fixed, check_files=False).outputs.http.token == TOKEN


@pytest.mark.parametrize(("extra", "problem"), [
    ("token: short", "outputs.http.token: string should have at least 16 characters"),
    ("username: u", "outputs.http: username and password go together"),
    ("password: longenough", "outputs.http: username and password go together"),
])
def test_weak_or_partial_credentials_are_config_errors(extra: str, problem: str) -> None:
    text = ("model: {path: m.onnx}\ncameras: [{name: a, source: {type: opencv, url: 0}}]\n"
            f"outputs: {{http: {{enabled: true, {extra}}}}}\n")
    with pytest.raises(ConfigError, match=problem):
        parse_config(text, check_files=False)


def test_loopback_detection() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org", ""]))


TRAVERSALS = [
    "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd",
    "/stream/../../../../etc/passwd", "/stream/..%2f..%2f..%2fetc%2fpasswd.mjpg",
    "/snapshot/../../../../etc/passwd.jpg", "/snapshot/%2e%2e%2f%2e%2e%2fetc%2fpasswd.jpg",
    "/snapshot/....//....//etc/passwd.jpg", "/stream/cam.mjpg/../../../etc/passwd",
    "/index.html/../../config.yaml", "/snapshot/..\\..\\etc\\passwd.jpg",
    "/stream/%00cam.mjpg", "/snapshot/cam.jpg%00.html",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_reaches_a_file(path: str) -> None:
    with server() as sink:
        status, _, body = get(sink, path)
        assert status == 404, (path, status)
        assert b"root:" not in body and b"model:" not in body


def test_stream_clients_are_bounded() -> None:
    with server(max_clients=2) as sink:
        streams = [http.client.HTTPConnection("127.0.0.1", sink.port, timeout=10)
                   for _ in range(2)]
        for conn in streams:
            conn.request("GET", "/stream/cam.mjpg")
            assert conn.getresponse().status == 200
        status, headers, _ = get(sink, "/stream/cam.mjpg")
        assert status == 503 and headers["retry-after"] == "5"
        assert get(sink, "/healthz")[0] == 200  # other routes still answer
        for conn in streams:
            conn.close()
        assert wait_until(lambda: sink.stream_clients == 0, 15)
        assert get(sink, "/stream/cam.mjpg")[0] == 200
        assert sink.metrics.snapshot()["faults"]["http"]["rejected"]["clients"] == 1


def _stalled_stream(port: int) -> socket.socket:
    """A viewer that asks for the stream and then never reads (a tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /stream/cam.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock


def test_a_viewer_that_stops_reading_is_dropped_and_never_blocks_frames() -> None:
    with server(client_timeout_s=0.5, max_fps=1000.0) as sink:
        stalled = [_stalled_stream(sink.port) for _ in range(3)]
        assert wait_until(lambda: sink.stream_clients == 3, 10)
        handled = 0
        # Keep feeding big frames (uncompressible JPEGs) until the server gave up on every
        # stalled viewer; each handle() returns at once although nobody reads.
        deadline = time.monotonic() + 60
        while sink.stream_clients and time.monotonic() < deadline:
            sink.handle(result(handled + 1, size=(720, 1280)))
            handled += 1
            time.sleep(0.02)
        assert sink.stream_clients == 0, "stalled viewers were not dropped"
        assert handled >= 3
        assert get(sink, "/snapshot/cam.jpg")[0] == 200
        for sock in stalled:
            sock.close()


def test_connections_are_bounded_and_idle_ones_time_out() -> None:
    with server(max_connections=4, client_timeout_s=1.0) as sink:
        idle = [socket.create_connection(("127.0.0.1", sink.port)) for _ in range(4)]
        time.sleep(0.3)
        refused = socket.create_connection(("127.0.0.1", sink.port), timeout=10)
        try:
            answer = refused.recv(200)
        except ConnectionResetError:
            answer = b""
        assert answer == b"" or answer.startswith(b"HTTP/1.1 503"), answer
        refused.close()
        # The idle connections never sent a request line: the server drops them after
        # client_timeout_s and serves again.
        assert wait_until(lambda: all(s.recv(1) == b"" for s in idle), 15)
        assert wait_until(lambda: get(sink, "/healthz")[0] == 200, 15)
        assert sink.metrics.snapshot()["faults"]["http"]["rejected"]["connections"] >= 1
        for sock in idle:
            sock.close()

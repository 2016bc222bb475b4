"""Remote inference benchmark: N cameras against one ``d2stream serve`` vs N local models.

In one run, for 1, 2, 4 and 8 cameras (threads, each with its own Predictor, each sending
640x480 frames as fast as answers come): total frames per second with ``backend: remote``
against one server, and with every camera running the model locally on the same machine. Then
the latency one frame adds when it goes remote (1 camera, server and local with the same
thread count): serialisation (encode the network input, decode the outputs) and transport.

On one machine both sides share the CPUs, so this measures the protocol's overhead and how a
server keeps up with many clients, not the gain of a separate server (which is the point of
remote inference: the Pis do only pre/post-processing).

    python benchmarks/remote_bench.py --model M.onnx [--seconds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_lib import camera_frame, machine_description  # noqa: E402
from daemon.inference.backends import RemoteOptions  # noqa: E402
from daemon.inference.oip_codec import decode, encode  # noqa: E402
from daemon.inference.predictor import Predictor  # noqa: E402

CAMERAS = (1, 2, 4, 8)


def _fps(predictors: list[Predictor], image: np.ndarray, seconds: float) -> float:
    counts = [0] * len(predictors)
    stop = time.monotonic() + seconds

    def loop(i: int) -> None:
        while time.monotonic() < stop:
            predictors[i].predict_compact(image)
            counts[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(predictors))]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - start)


def _latency(predictor: Predictor, image: np.ndarray, n: int) -> float:
    predictor.predict_compact(image)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        predictor.predict_compact(image)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def _serialisation_ms(predictor: Predictor, image: np.ndarray, n: int = 20) -> float:
    x = predictor.preprocess(image)
    outputs = predictor.backend.run({"image": x})
    t = time.perf_counter()
    for _ in range(n):
        body, length = encode({"image": x}, "inputs", True)
        decode(body, length, "inputs", "bench")
        body, length = encode(outputs, "outputs", True)
        decode(body, length, "outputs", "bench")
    return (time.perf_counter() - t) / n * 1000


def _start_server(model: str, port: int, threads: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "daemon.cli.main", "serve", model, "--port",
                             str(port), "--model-name", "bench", "--threads", str(threads),
                             "--max-queue", "16"], cwd=REPO_ROOT, stderr=subprocess.DEVNULL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(600):
        try:
            opener.open(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("d2stream serve did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()
    image = camera_frame(480, 640)
    server = _start_server(args.model, args.port, args.threads)
    try:
        options = RemoteOptions(f"http://127.0.0.1:{args.port}", "bench", timeout_s=120,
                                retries=5)
        print(f"machine: {machine_description()}  model: {Path(args.model).name}  "
              f"frame 640x480, {args.seconds:g} s per measurement")
        print(f"{'cameras':>8} {'remote fps':>11} {'local fps':>10}")
        for n in CAMERAS:
            remote = [Predictor(args.model, backend="remote", remote=options)
                      for _ in range(n)]
            local = [Predictor(args.model, num_threads=max(1, args.threads // n),
                               backend="onnxruntime") for _ in range(n)]
            r = _fps(remote, image, args.seconds)
            loc = _fps(local, image, args.seconds)
            print(f"{n:>8} {r:>11.2f} {loc:>10.2f}")
        one_remote = Predictor(args.model, backend="remote", remote=options)
        one_local = Predictor(args.model, num_threads=args.threads, backend="onnxruntime")
        lat_r, lat_l = _latency(one_remote, image, 10), _latency(one_local, image, 10)
        ser = _serialisation_ms(one_local, image)
        print(f"latency per frame, 1 camera: local {lat_l:.1f} ms, remote {lat_r:.1f} ms, "
              f"added {lat_r - lat_l:.1f} ms (of which serialisation {ser:.1f} ms)")
    finally:
        server.kill()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

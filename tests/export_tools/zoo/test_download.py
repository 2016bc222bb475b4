"""Downloads against a real HTTP server on 127.0.0.1: complete, interrupted, resumed, checksums,
offline with and without the cache."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from export_tools.zoo.download import (
    Checksum,
    ChecksumError,
    DownloadError,
    cache_dir,
    fetch,
)
from tests.export_tools.zoo.http_server import FileServer

REL = "models/137/model_final_abc.pkl"


@pytest.fixture
def payload() -> bytes:
    size = 3 * 2**20 + 12345
    return np.random.default_rng(0).integers(0, 256, size=size, dtype=np.uint8).tobytes()


@pytest.fixture
def server(tmp_path: Path, payload: bytes) -> Iterator[FileServer]:
    root = tmp_path / "www"
    (root / REL).parent.mkdir(parents=True)
    (root / REL).write_bytes(payload)
    with FileServer(root) as srv:
        yield srv


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{REL}"


def test_complete_download_is_verified_and_cached(server, payload, tmp_path, capsys):
    dest = tmp_path / "cache" / "m.pkl"
    out = fetch(server.url(REL), dest, Checksum(sha256=_sha(payload)), progress=True)
    assert out == dest and dest.read_bytes() == payload
    assert not dest.with_name("m.pkl.part").exists()
    assert "m.pkl" in capsys.readouterr().err  # tqdm bar on stderr
    # A second call uses the cache without a request.
    n = len(server.script.requests)
    assert fetch(server.url(REL), dest, Checksum(sha256=_sha(payload))) == dest
    assert len(server.script.requests) == n


def test_interrupted_transfer_resumes_with_range(server, payload, tmp_path):
    server.script.truncate_after["/" + REL] = [1_000_000]
    dest = tmp_path / "m.pkl"
    fetch(server.url(REL), dest, Checksum(sha256=_sha(payload)), progress=False, retries=1)
    assert dest.read_bytes() == payload
    assert [r for _, r in server.script.requests] == [None, "bytes=1000000-"]


def test_interrupted_download_fails_then_resumes_on_next_run(server, payload, tmp_path):
    server.script.truncate_after["/" + REL] = [700_000, 1_500_000]
    dest = tmp_path / "m.pkl"
    with pytest.raises(DownloadError, match="run again to resume") as err:
        fetch(server.url(REL), dest, progress=False, retries=1)
    assert "\n" not in str(err.value)
    part = dest.with_name("m.pkl.part")
    assert part.stat().st_size == 700_000 + 1_500_000 and not dest.exists()
    fetch(server.url(REL), dest, Checksum(sha256=_sha(payload)), progress=False, retries=0)
    assert dest.read_bytes() == payload and not part.exists()
    assert server.script.requests[-1][1] == "bytes=2200000-"


def test_server_ignoring_range_restarts_cleanly(server, payload, tmp_path):
    server.script.truncate_after["/" + REL] = [500_000]
    server.script.ignore_range = True
    dest = tmp_path / "m.pkl"
    fetch(server.url(REL), dest, Checksum(sha256=_sha(payload)), progress=False, retries=1)
    assert dest.read_bytes() == payload


def test_part_file_already_complete_is_accepted(server, payload, tmp_path):
    dest = tmp_path / "m.pkl"
    dest.with_name("m.pkl.part").write_bytes(payload)
    fetch(server.url(REL), dest, Checksum(sha256=_sha(payload)), progress=False)
    assert dest.read_bytes() == payload
    assert server.script.requests[-1][1] == f"bytes={len(payload)}-"


def test_bad_sha256_removes_the_file(server, payload, tmp_path):
    dest = tmp_path / "m.pkl"
    wrong = _sha(payload + b"x")
    with pytest.raises(ChecksumError, match=f"expected {wrong}"):
        fetch(server.url(REL), dest, Checksum(sha256=wrong), progress=False)
    assert not dest.exists() and not dest.with_name("m.pkl.part").exists()


def test_md5_prefix_is_checked(server, payload, tmp_path):
    md5 = hashlib.md5(payload).hexdigest()
    good = fetch(server.url(REL), tmp_path / "a.pkl", Checksum(md5_prefix=md5[:6]), progress=False)
    assert good.read_bytes() == payload
    bad_prefix = "000000" if not md5.startswith("000000") else "111111"
    with pytest.raises(ChecksumError, match=f"start with {bad_prefix}"):
        fetch(server.url(REL), tmp_path / "b.pkl", Checksum(md5_prefix=bad_prefix), progress=False)
    assert not (tmp_path / "b.pkl").exists()


def test_corrupt_cached_file_is_downloaded_again(server, payload, tmp_path):
    dest = tmp_path / "m.pkl"
    dest.write_bytes(payload[:-1] + b"\0")
    fetch(server.url(REL), dest, Checksum(sha256=_sha(payload)), progress=False)
    assert dest.read_bytes() == payload


def test_offline_uses_the_cache(payload, tmp_path, monkeypatch):
    monkeypatch.setenv("D2STREAM_OFFLINE", "1")
    dest = tmp_path / "m.pkl"
    dest.write_bytes(payload)
    assert fetch(_closed_port_url(), dest, Checksum(sha256=_sha(payload))) == dest


def test_offline_without_cache_fails_clearly(server, tmp_path, monkeypatch):
    monkeypatch.setenv("D2STREAM_OFFLINE", "1")
    with pytest.raises(DownloadError) as err:
        fetch(server.url(REL), tmp_path / "m.pkl", progress=False)
    msg = str(err.value)
    assert "offline" in msg and server.url(REL) in msg and "\n" not in msg
    assert server.script.requests == []


def test_no_network_with_cache_works_and_without_fails_clearly(payload, tmp_path):
    url = _closed_port_url()
    cached = tmp_path / "cached.pkl"
    cached.write_bytes(payload)
    assert fetch(url, cached, Checksum(sha256=_sha(payload)), progress=False) == cached
    with pytest.raises(DownloadError, match="cannot download .*not in the cache") as err:
        fetch(url, tmp_path / "missing.pkl", progress=False)
    assert "\n" not in str(err.value)


def test_http_404_is_reported(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(server.url("models/nothing.pkl"), tmp_path / "n.pkl", progress=False)


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("D2STREAM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "d2stream"
    monkeypatch.setenv("D2STREAM_CACHE", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("D2STREAM_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "d2stream"

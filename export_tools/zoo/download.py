"""Download files into the d2stream cache with resume, checksum checks and an offline mode.

Only the standard library talks to the network (``urllib``). A download goes to ``NAME.part``
beside its destination; an interrupted transfer keeps the part file and the next attempt asks the
server for the rest with an HTTP ``Range`` header. The finished file is verified (full SHA-256
when known, else the MD5 prefix that Detectron2's zoo file names carry) before it is renamed into
place, so a file in the cache is always complete.

Environment:
    ``D2STREAM_CACHE``: cache folder (default ``$XDG_CACHE_HOME/d2stream``, ``~/.cache/d2stream``).
    ``D2STREAM_OFFLINE=1``: never touch the network; use cached files or fail clearly.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from d2common.zoo_names import CACHE_ENV, OFFLINE_ENV, cache_dir, offline_mode
from export_tools.errors import ExportError

logger = logging.getLogger(__name__)

__all__ = ["CACHE_ENV", "OFFLINE_ENV", "Checksum", "ChecksumError", "DownloadError", "cache_dir",
           "fetch", "file_digests", "offline_mode"]

_CHUNK = 1 << 20
_USER_AGENT = "d2stream-zoo/1"


class DownloadError(ExportError):
    """A file that could not be downloaded and is not in the cache."""


class ChecksumError(DownloadError):
    """A downloaded or cached file whose checksum is not the published one."""


@dataclass(frozen=True)
class Checksum:
    """What is known about a file's content: a full SHA-256 and/or an MD5 hex prefix."""

    sha256: str | None = None
    md5_prefix: str | None = None

    def describe(self) -> str:
        if self.sha256:
            return f"sha256 {self.sha256}"
        return f"md5 prefix {self.md5_prefix}" if self.md5_prefix else "no checksum"

    def verify(self, path: Path, shown_name: str | None = None) -> None:
        """Raise :class:`ChecksumError` when ``path`` does not match what is known."""
        if not self.sha256 and not self.md5_prefix:
            return
        sha, md5 = file_digests(path)
        name = shown_name or str(path)
        if self.sha256 and sha != self.sha256.lower():
            raise ChecksumError(f"{name}: sha256 is {sha}, expected {self.sha256}")
        if self.md5_prefix and not md5.startswith(self.md5_prefix.lower()):
            raise ChecksumError(
                f"{name}: md5 is {md5}, expected it to start with {self.md5_prefix}"
            )


def file_digests(path: Path) -> tuple[str, str]:
    """``(sha256, md5)`` hex digests of a file, read in 1 MiB chunks."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def fetch(
    url: str,
    dest: Path,
    checksum: Checksum | None = None,
    *,
    offline: bool | None = None,
    progress: bool = True,
    retries: int = 2,
    timeout: float = 30.0,
) -> Path:
    """Return ``dest``, downloading ``url`` into it first unless a verified copy is there.

    Args:
        url: ``http(s)://`` or ``file://`` URL.
        dest: final path; ``dest.part`` holds an unfinished download between attempts.
        checksum: verified on the cached file and on the finished download; a mismatch removes
            the file and raises :class:`ChecksumError`.
        offline: never use the network (default: ``$D2STREAM_OFFLINE``).
        progress: show a tqdm progress bar on stderr.
        retries: extra attempts (each resuming where the last stopped) after an interruption.
        timeout: seconds to wait for the server on connect and on each read.

    Raises:
        DownloadError: the file is not cached and cannot be downloaded (offline, no network,
            HTTP error, or still incomplete after ``retries``).
    """
    checksum = checksum or Checksum()
    if dest.is_file() and _cached_ok(dest, checksum):
        return dest
    if offline_mode() if offline is None else offline:
        raise DownloadError(
            f"{dest.name} is not in the cache ({dest}) and offline mode is on "
            f"({OFFLINE_ENV}=1); download {url} on a connected machine and copy it there"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            if _download_once(url, part, progress=progress, timeout=timeout):
                break
        except _Interrupted as exc:
            logger.warning("download of %s interrupted (%s); attempt %d of %d", url, exc,
                           attempt + 1, retries + 1)
    else:
        got = part.stat().st_size if part.exists() else 0
        raise DownloadError(
            f"download of {url} stopped after {got} bytes ({retries + 1} attempts); "
            f"run again to resume from {part}"
        )
    try:
        checksum.verify(part, shown_name=f"downloaded {url}")
    except ChecksumError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    logger.info("downloaded %s -> %s", url, dest)
    return dest


def _cached_ok(dest: Path, checksum: Checksum) -> bool:
    try:
        checksum.verify(dest, shown_name=f"cached {dest}")
    except ChecksumError as exc:
        logger.warning("%s; removing it", exc)
        dest.unlink(missing_ok=True)
        return False
    return True


class _Interrupted(Exception):
    """The server closed the connection before the whole body arrived."""


def _download_once(url: str, part: Path, *, progress: bool, timeout: float) -> bool:
    """One request, appending to ``part``; True when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s)/file
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have and _range_total(exc.headers.get("Content-Range")) == have:
            return True  # the part file already holds the whole body
        if exc.code == 416:
            part.unlink(missing_ok=True)
            raise _Interrupted("server rejected the resume offset; restarting") from None
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"cannot download {url}: {reason} (no network? the file is not in the cache; "
            f"copy it there or set {CACHE_ENV})"
        ) from None
    with response:
        status = getattr(response, "status", None) or 200
        if have and status != 206:
            logger.info("server ignored the resume request for %s; starting over", url)
            have = 0
        total = _expected_total(response.headers, have)
        with part.open("ab" if have else "wb") as out:
            written = _copy(response, out, have, total, progress, part.name)
    if total is not None and written < total:
        raise _Interrupted(f"got {written} of {total} bytes")
    return True


def _copy(src: BinaryIO, out: BinaryIO, have: int, total: int | None, progress: bool,
          label: str) -> int:
    """Copy the body with a progress bar; returns the size of ``out`` afterwards."""
    written = have
    bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
               desc=label.removesuffix(".part"), file=sys.stderr, disable=not progress,
               leave=False)
    with bar:
        while True:
            try:
                chunk = src.read(_CHUNK)
            except (OSError, ValueError, http.client.HTTPException) as exc:  # reset, truncated
                logger.debug("read failed after %d bytes: %s", written, exc)
                break
            if not chunk:
                break
            out.write(chunk)
            written += len(chunk)
            bar.update(len(chunk))
    return written


def _expected_total(headers: Message, have: int) -> int | None:
    """Full file size from ``Content-Range`` (206) or ``have + Content-Length``."""
    total = _range_total(headers.get("Content-Range"))
    if total is not None:
        return total
    length = headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else None


def _range_total(content_range: str | None) -> int | None:
    match = re.search(r"/(\d+)\s*$", content_range or "")
    return int(match.group(1)) if match else None

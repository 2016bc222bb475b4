"""Measure the clock the cores really run at (virtual machines report only the nominal one).

A virtual machine's ``/proc/cpuinfo`` shows the host's nominal (TSC) clock, and it has no
``cpufreq``; cores that boost run faster, and a FLOP floor computed at the nominal clock is then
no floor at all (a matmul can beat it). The probe counts cycles directly: a chain of dependent
integer additions retires one addition per cycle on every x86-64 and AArch64 core, so additions
per second is the clock. Register-register additions (``x += x``): some x86 cores fold a chain
of add-immediates at rename (an Intel Xeon here ran ``add $1`` at 21 "GHz", ``add x, x`` at
4.0). It is a few lines of C compiled with the system's C compiler (``cc``) on first use and
cached; one copy runs on each core at once, so the figure is the all-core clock.
No compiler, another architecture or a failed run: :func:`measure_clock_ghz` returns ``None``
and the caller keeps the nominal clock.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

ADDS_PER_ITERATION = 16

PROBE_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__)
#define ADD1 "add %0, %0\n\t"
#elif defined(__aarch64__)
#define ADD1 "add %0, %0, %0\n\t"
#else
#error "no clock probe for this architecture"
#endif
#define ADD4 ADD1 ADD1 ADD1 ADD1
#define ADD16 ADD4 ADD4 ADD4 ADD4

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    unsigned long iterations = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000000UL;
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    unsigned long x = 1;
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        for (unsigned long i = 0; i < iterations; i++) {
            __asm__ volatile(ADD16 : "+r"(x));
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("%.6f %lu\n", (double)iterations * 16.0 / best / 1e9, x);
    return 0;
}
"""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "d2stream"


def build_probe(cache_dir: Path | None = None) -> Path | None:
    """The compiled probe (built once per source version), or ``None`` without a compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        log.info("clock probe: no C compiler (cc); using the nominal clock")
        return None
    digest = hashlib.sha256(PROBE_SOURCE.encode()).hexdigest()[:12]
    folder = cache_dir or _cache_dir()
    binary = folder / f"clock-probe-{digest}"
    if binary.is_file():
        return binary
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "probe.c"
            source.write_text(PROBE_SOURCE)
            built = Path(tmp) / "probe"
            subprocess.run([compiler, "-O1", "-o", str(built), str(source)], check=True,
                           capture_output=True, timeout=60)
            shutil.move(str(built), binary)  # atomic enough: a half-copied file is never run
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("clock probe: could not build it (%s); using the nominal clock", exc)
        return None
    return binary


def parse_probe_output(text: str) -> float:
    """GHz from the probe's output line (``"<GHz> <checksum>"``)."""
    return float(text.split()[0])


def measure_clock_ghz(copies: int, iterations: int = 10_000_000, repeats: int = 5,
                      cache_dir: Path | None = None) -> float | None:
    """All-core clock in GHz: ``copies`` probes at once (one per core), the slowest one's best
    repetition; ``None`` when the probe is not available here."""
    binary = build_probe(cache_dir)
    if binary is None:
        return None
    cmd = [str(binary), str(iterations), str(repeats)]
    try:
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
                 for _ in range(max(1, copies))]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        if any(p.returncode for p in procs):
            raise subprocess.SubprocessError(f"exit codes {[p.returncode for p in procs]}")
        return min(parse_probe_output(o) for o in outputs)
    except (OSError, ValueError, IndexError, subprocess.SubprocessError) as exc:
        log.info("clock probe: run failed (%s); using the nominal clock", exc)
        return None

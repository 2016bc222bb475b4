"""The CPU's theoretical fp32 peak (cores x clock x FLOPs per cycle) and a measured matmul rate.

The peak is what a FLOP floor is computed against: ``floor = model FLOPs / peak``. Its three
factors come from the operating system:

- cores: physical cores this process may run on (``sched_getaffinity`` intersected with the
  ``physical id`` / ``core id`` pairs of ``/proc/cpuinfo``, so SMT siblings count once);
- clock: the highest ``cpuinfo_max_freq`` under ``/sys/devices/system/cpu/cpu*/cpufreq``, else
  the highest ``cpu MHz`` of ``/proc/cpuinfo`` (in virtual machines that is the nominal clock;
  turbo may run faster, which a measured matmul above the peak reveals);
- FLOPs per core-cycle from the vector units: 64 with AVX-512 (two 512-bit FMA pipes), 32 with
  AVX2 + FMA, 16 with AVX or NEON, 8 otherwise, except AMD Zen 4 (family 25 with AVX-512),
  whose AVX-512 runs on 256-bit FMA pipes: 32.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CPUINFO = Path("/proc/cpuinfo")
SYSFS_CPU = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class CpuPeak:
    """Theoretical fp32 peak of the cores this process may use."""

    model_name: str
    cores: int
    clock_ghz: float
    clock_source: str
    flops_per_cycle: int
    vector_unit: str

    @property
    def peak_gflops(self) -> float:
        return self.cores * self.clock_ghz * self.flops_per_cycle

    def describe(self) -> str:
        return (f"{self.model_name}: {self.cores} cores x {self.clock_ghz:.2f} GHz "
                f"({self.clock_source}) x {self.flops_per_cycle} FLOP/cycle ({self.vector_unit})"
                f" = {self.peak_gflops:.1f} GFLOP/s fp32")


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """``/proc/cpuinfo`` as one dict per logical processor."""
    blocks: list[dict[str, str]] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        entry: dict[str, str] = {}
        for line in chunk.splitlines():
            if ":" in line:
                key, _, value = line.partition(":")
                entry[key.strip()] = value.strip()
        if entry:
            blocks.append(entry)
    return blocks


def flops_per_cycle(entry: dict[str, str]) -> tuple[int, str]:
    """fp32 FLOPs per core-cycle (FMA = 2) and the vector unit it comes from."""
    flags = set((entry.get("flags") or entry.get("Features") or "").split())
    vendor = entry.get("vendor_id", "")
    family = entry.get("cpu family", "")
    if "avx512f" in flags:
        if vendor == "AuthenticAMD" and family == "25":
            return 32, "AVX-512 on 256-bit pipes (AMD Zen 4)"
        return 64, "AVX-512 + FMA"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2 + FMA"
    if "avx" in flags:
        return 16, "AVX"
    if flags & {"asimd", "neon"}:
        return 16, "NEON (2 x 128-bit FMA)"
    return 8, "SSE / scalar"


def physical_cores(entries: list[dict[str, str]], allowed: Iterable[int] | None = None) -> int:
    """Distinct (physical id, core id) among the allowed logical processors."""
    allowed_set = set(allowed) if allowed is not None else None
    cores = set()
    for e in entries:
        if not e.get("processor", "").isdigit():
            continue  # e.g. the trailing Hardware / Model block on ARM
        cpu = int(e["processor"])
        if allowed_set is not None and cpu not in allowed_set:
            continue
        cores.add((e.get("physical id", "0"), e.get("core id", str(cpu))))
    return max(1, len(cores))


def max_clock(entries: list[dict[str, str]], sysfs: Path = SYSFS_CPU) -> tuple[float, str]:
    """Highest clock in GHz and where it was read."""
    freqs = []
    for f in sysfs.glob("cpu[0-9]*/cpufreq/cpuinfo_max_freq"):
        try:
            freqs.append(int(f.read_text().strip()) / 1e6)  # kHz -> GHz
        except (OSError, ValueError):
            continue
    if freqs:
        return max(freqs), "cpufreq max"
    mhz = [float(e["cpu MHz"]) for e in entries if _is_float(e.get("cpu MHz"))]
    if mhz:
        return max(mhz) / 1000.0, "/proc/cpuinfo cpu MHz"
    name = entries[0].get("model name", "") if entries else ""
    match = re.search(r"@\s*([\d.]+)\s*GHz", name)
    if match:
        return float(match.group(1)), "model name"
    return 1.0, "unknown (1 GHz assumed)"


def _is_float(value: str | None) -> bool:
    try:
        float(value or "")
    except ValueError:
        return False
    return True


def read_cpu_peak(cpuinfo_text: str | None = None, sysfs: Path = SYSFS_CPU,
                  allowed: Iterable[int] | None = None) -> CpuPeak:
    """The peak of this machine (or of the given ``/proc/cpuinfo`` text and sysfs root)."""
    text = cpuinfo_text if cpuinfo_text is not None else CPUINFO.read_text()
    entries = parse_cpuinfo(text)
    if allowed is None and cpuinfo_text is None and hasattr(os, "sched_getaffinity"):
        allowed = os.sched_getaffinity(0)
    first = entries[0] if entries else {}
    fpc, unit = flops_per_cycle(first)
    clock, source = max_clock(entries, sysfs)
    name = next((e[k] for k in ("model name", "Model", "Hardware") for e in entries if k in e),
                "CPU")
    return CpuPeak(name, physical_cores(entries, allowed), clock, source, fpc, unit)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of an ``n x n`` by ``n x n`` numpy matmul (BLAS, all threads)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    np.matmul(a, b)  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9

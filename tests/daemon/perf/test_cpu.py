"""CPU peak parsing: cores, clock and FLOPs per cycle from /proc/cpuinfo texts and a fake sysfs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from daemon.perf.cpu import (
    flops_per_cycle,
    matmul_gflops,
    max_clock,
    parse_cpuinfo,
    physical_cores,
    read_cpu_peak,
)


def _x86(n: int, vendor: str, family: str, flags: str, mhz: float, name: str,
         threads_per_core: int = 1) -> str:
    blocks = []
    for cpu in range(n):
        blocks.append("\n".join([
            f"processor\t: {cpu}", f"vendor_id\t: {vendor}", f"cpu family\t: {family}",
            f"model name\t: {name}", f"cpu MHz\t\t: {mhz:.3f}", "physical id\t: 0",
            f"core id\t\t: {cpu // threads_per_core}", f"flags\t\t: fpu sse2 {flags}",
        ]))
    return "\n\n".join(blocks) + "\n"


ZEN4 = _x86(2, "AuthenticAMD", "25", "avx avx2 fma avx512f avx512bw", 2596.152, "AMD EPYC")
SKYLAKE_SMT = _x86(8, "GenuineIntel", "6", "avx avx2 fma avx512f",
                   2000.0, "Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz", threads_per_core=2)
HASWELL = _x86(4, "GenuineIntel", "6", "avx avx2 fma", 3400.0, "Intel(R) Core(TM) i7-4770")
PI4 = "\n\n".join(
    f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
    f"CPU implementer\t: 0x41\nCPU part\t: 0xd08" for i in range(4)
) + "\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"


def _sysfs(tmp_path: Path, khz: list[int]) -> Path:
    for i, f in enumerate(khz):
        d = tmp_path / f"cpu{i}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "cpuinfo_max_freq").write_text(f"{f}\n")
    return tmp_path


def test_zen4_avx512_counts_32_flops_per_cycle(tmp_path):
    peak = read_cpu_peak(ZEN4, sysfs=tmp_path)  # empty sysfs: clock from cpu MHz
    assert (peak.cores, peak.flops_per_cycle) == (2, 32)
    assert peak.clock_ghz == pytest.approx(2.596152)
    assert peak.clock_source == "/proc/cpuinfo cpu MHz"
    assert peak.peak_gflops == pytest.approx(2 * 2.596152 * 32)
    assert "Zen 4" in peak.vector_unit and "166.2 GFLOP/s" in peak.describe()


def test_intel_avx512_smt_siblings_count_once_and_sysfs_clock_wins(tmp_path):
    sysfs = _sysfs(tmp_path, [3100000, 3500000])
    peak = read_cpu_peak(SKYLAKE_SMT, sysfs=sysfs)
    assert peak.cores == 4  # 8 logical processors, 2 threads per core
    assert peak.flops_per_cycle == 64
    assert (peak.clock_ghz, peak.clock_source) == (3.5, "cpufreq max")
    assert peak.peak_gflops == pytest.approx(4 * 3.5 * 64)


def test_affinity_restricts_cores(tmp_path):
    entries = parse_cpuinfo(SKYLAKE_SMT)
    assert physical_cores(entries, allowed={0, 1}) == 1  # two siblings of core 0
    assert physical_cores(entries, allowed={0, 2, 4}) == 3
    assert read_cpu_peak(HASWELL, sysfs=tmp_path, allowed={1, 2}).cores == 2


def test_avx2_fma_is_32_flops_per_cycle(tmp_path):
    peak = read_cpu_peak(HASWELL, sysfs=tmp_path)
    assert (peak.cores, peak.flops_per_cycle, peak.clock_ghz) == (4, 32, 3.4)


def test_raspberry_pi_neon_with_sysfs_clock(tmp_path):
    peak = read_cpu_peak(PI4, sysfs=_sysfs(tmp_path, [1800000] * 4))
    assert (peak.cores, peak.flops_per_cycle, peak.clock_ghz) == (4, 16, 1.8)
    assert peak.model_name == "Raspberry Pi 4 Model B Rev 1.4"


def test_clock_from_model_name_when_nothing_else(tmp_path):
    text = SKYLAKE_SMT.replace("cpu MHz\t\t: 2000.000\n", "")
    clock, source = max_clock(parse_cpuinfo(text), tmp_path)
    assert (clock, source) == (2.5, "model name")


@pytest.mark.parametrize("flags, expected", [
    ("sse2 sse4_2", 8), ("avx", 16), ("avx avx2", 16), ("avx avx2 fma", 32),
    ("avx avx2 fma avx512f", 64),
])
def test_flops_per_cycle_by_flags(flags, expected):
    assert flops_per_cycle({"flags": flags, "vendor_id": "GenuineIntel"})[0] == expected


def test_this_machine_and_a_real_matmul():
    peak = read_cpu_peak()
    assert peak.cores >= 1 and peak.clock_ghz > 0 and peak.flops_per_cycle in (8, 16, 32, 64)
    gflops = matmul_gflops(n=256, repeats=2)
    assert math.isfinite(gflops) and gflops > 0

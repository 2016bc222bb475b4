"""The clock probe: compiled with the system's C compiler, run on every core, or absent."""

from __future__ import annotations

import shutil

import pytest

from daemon.perf import clock, cpu


def test_probe_measures_a_plausible_clock_or_reports_no_compiler(tmp_path):
    ghz = clock.measure_clock_ghz(copies=2, iterations=200_000, repeats=3, cache_dir=tmp_path)
    if shutil.which("cc") or shutil.which("gcc") or shutil.which("clang"):
        assert ghz is not None and 0.3 < ghz < 7.0
        assert len(list(tmp_path.glob("clock-probe-*"))) == 1  # built once, cached
    else:
        assert ghz is None


def test_no_compiler_means_no_measurement(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to compile with
    assert clock.build_probe(tmp_path / "cache") is None
    assert clock.measure_clock_ghz(1, cache_dir=tmp_path / "cache") is None


def test_parse_probe_output():
    assert clock.parse_probe_output("3.641200 1234\n") == pytest.approx(3.6412)
    with pytest.raises(ValueError):
        clock.parse_probe_output("garbage")


@pytest.mark.parametrize("measured, expect_measured", [(99.0, True), (0.01, False), (None, False)])
def test_machine_peak_takes_the_higher_clock(monkeypatch, measured, expect_measured):
    nominal = cpu.read_cpu_peak()
    monkeypatch.setattr(clock, "measure_clock_ghz", lambda copies: measured)
    peak = cpu.machine_cpu_peak()
    if expect_measured:
        assert peak.clock_ghz == measured and "measured on all cores" in peak.clock_source
        assert peak.peak_gflops == pytest.approx(peak.cores * 99.0 * peak.flops_per_cycle)
    else:
        assert peak.clock_ghz == nominal.clock_ghz
    if measured is not None and not expect_measured:
        assert "not used" in peak.clock_source

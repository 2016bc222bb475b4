"""The soak's leak measure on made-up samples: arena steps pass, leaks of every shape fail."""

from __future__ import annotations

from tests.daemon.reliability.soak import ARENA_STEP_KB, Sample, SoakResult
from tests.daemon.reliability.test_reliability_soak import RSS_NOISE_KB


def _result(worker_kb: list[int]) -> SoakResult:
    samples = [Sample(t=2.0 * i, daemon_rss_kb=100_000, daemon_fds=20, daemon_threads=17,
                      worker_rss_kb=kb, worker_fds=9, worker_pid=7, processed=8 * i)
               for i, kb in enumerate(worker_kb)]
    return SoakResult(samples=samples, warmup_s=0.0)


def test_two_arena_extensions_after_the_warmup_are_not_a_leak() -> None:
    # The shape of the CI run that failed the old measure (+10 MB in two steps, flat otherwise).
    series = [234_000 + 4 * i for i in range(30)]
    series[12:] = [v + 6_000 for v in series[12:]]
    series[20:] = [v + 4_200 for v in series[20:]]
    result = _result(series)
    assert result.growth("worker_rss_kb") > RSS_NOISE_KB  # the plain growth would fail
    assert result.steps("worker_rss_kb", ARENA_STEP_KB) == [6_004, 4_204]
    assert not result.worker_memory_leaks(RSS_NOISE_KB)


def test_a_steady_leak_of_a_frame_per_second_is_found() -> None:
    frame_kb = 320 * 240 * 3 // 1024
    result = _result([234_000 + 2 * frame_kb * i for i in range(30)])
    assert result.steps("worker_rss_kb", ARENA_STEP_KB) == []
    assert result.worker_memory_leaks(RSS_NOISE_KB)


def test_a_leak_in_steps_is_found() -> None:
    # 3 MB lost at every camera reopen (every 10 s): five steps in the measured minute.
    result = _result([234_000 + 3_072 * (i // 5) for i in range(30)])
    assert len(result.steps("worker_rss_kb", ARENA_STEP_KB)) == 5
    assert result.worker_memory_leaks(RSS_NOISE_KB)


def test_large_steps_on_top_of_creep_are_found() -> None:
    series = [234_000 + 300 * i for i in range(30)]
    series[15:] = [v + 15_000 for v in series[15:]]
    result = _result(series)
    # The creep of the sample that steps goes with the step.
    assert result.growth_between_steps("worker_rss_kb", ARENA_STEP_KB) == 28 * 300
    assert result.worker_memory_leaks(RSS_NOISE_KB)

"""Pure measurement functions of the emulator, on hand-made timelines (no call, no network)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulators.metrics import (
    PSNR_CAP_DB,
    delay_summary,
    detect_freezes,
    loss_pct,
    psnr_db,
    rate_series,
    ssim_index,
)


def steady(fps: float, n: int, start: float = 0.0) -> list[float]:
    return [start + i / fps for i in range(n)]


def with_gap(fps: float, before: int, gap_s: float, after: int) -> list[float]:
    times = steady(fps, before)
    resume = times[-1] + gap_s
    return times + steady(fps, after, start=resume)


def test_steady_stream_has_no_freeze_or_pause():
    stats = detect_freezes(steady(15, 300))
    assert stats.freeze_count == 0 and stats.pause_count == 0


@pytest.mark.parametrize(
    "fps, gap_s, is_freeze",
    [
        # 15 fps: mean 66.7 ms -> threshold max(200, 216.7) = 216.7 ms (the +150 ms rule binds)
        (15, 0.300, True),
        (15, 0.210, False),
        # 30 fps: threshold max(100, 183.3) = 183.3 ms; 150 ms is > 3x the mean but not a freeze
        (30, 0.190, True),
        (30, 0.150, False),
        # 5 fps: threshold max(600, 350) = 600 ms (the 3x rule binds)
        (5, 0.650, True),
        (5, 0.500, False),
    ],
)
def test_freeze_threshold_is_max_of_three_times_mean_and_mean_plus_150ms(fps, gap_s, is_freeze):
    stats = detect_freezes(with_gap(fps, 40, gap_s, 40))
    assert stats.freeze_count == (1 if is_freeze else 0)
    assert stats.pause_count == 0
    if is_freeze:
        assert stats.freezes[0].duration_s == pytest.approx(gap_s)
        assert stats.freezes[0].start_s == pytest.approx(39 / fps)


def test_long_gap_is_a_pause_not_a_freeze():
    stats = detect_freezes(with_gap(15, 40, 6.0, 40))
    assert stats.pause_count == 1 and stats.freeze_count == 0
    assert stats.total_pause_s == pytest.approx(6.0)
    just_under = detect_freezes(with_gap(15, 40, 4.9, 40))
    assert just_under.pause_count == 0 and just_under.freeze_count == 1


def test_mean_uses_only_the_last_30_gaps():
    # 40 gaps at 1 fps, then 40 at 15 fps: the 30-gap window has forgotten the slow start, so a
    # 400 ms gap is a freeze (it would not be against the whole-history mean of ~0.5 s).
    times = steady(1, 41)
    times += steady(15, 40, start=times[-1] + 1 / 15)
    times.append(times[-1] + 0.4)
    stats = detect_freezes(times)
    assert stats.freeze_count == 1


def test_no_freeze_before_enough_history():
    times = [0.0, 0.066, 0.133, 1.0, 1.066]  # only 2 gaps known before the 0.87 s one
    assert detect_freezes(times).freeze_count == 0
    assert detect_freezes(times, min_history_frames=2).freeze_count == 1


def test_stream_that_stops_ends_with_a_pause_when_end_given():
    times = steady(15, 30)
    assert detect_freezes(times).pause_count == 0
    stats = detect_freezes(times, end_s=times[-1] + 8.0)
    assert stats.pause_count == 1 and stats.total_pause_s == pytest.approx(8.0)


def test_several_freezes_counted_and_summed():
    times = with_gap(15, 40, 0.5, 40)
    times = times + [t + times[-1] + 0.8 for t in steady(15, 40)]
    stats = detect_freezes(times)
    assert stats.freeze_count == 2
    assert stats.total_freeze_s == pytest.approx(1.3)


def test_times_going_backwards_rejected():
    with pytest.raises(ValueError):
        detect_freezes([0.0, 0.1, 0.05])


def test_rate_series_counts_per_second_and_weights():
    times = steady(15, 45)  # 3 s of frames
    fps = rate_series(times, 0.0, 3.0)
    assert fps == pytest.approx([15.0, 15.0, 15.0])
    bits = rate_series([0.1, 0.2, 1.5], 0.0, 2.0, weights=[8000, 8000, 4000])
    assert bits == pytest.approx([16000.0, 4000.0])
    # A short last bin is scaled to a rate, not a count
    assert rate_series([0.0, 1.1, 1.2], 0.0, 1.5) == pytest.approx([1.0, 4.0])
    assert rate_series([], 0.0, 0.0) == []


def test_delay_summary_percentiles():
    delays = np.arange(1, 101) / 1000.0  # 1..100 ms
    s = delay_summary(delays)
    assert s.count == 100
    assert s.mean_ms == pytest.approx(50.5)
    assert s.p50_ms == pytest.approx(50.5)
    assert s.p95_ms == pytest.approx(95.05)
    assert s.max_ms == pytest.approx(100.0)
    assert delay_summary([]).mean_ms is None


def test_psnr_known_values():
    ref = np.full((16, 16), 100, np.uint8)
    assert psnr_db(ref, ref) == PSNR_CAP_DB
    off = ref + 5  # MSE 25
    assert psnr_db(ref, off) == pytest.approx(10 * math.log10(255**2 / 25))


def test_ssim_identical_is_one_and_noise_lowers_it():
    rng = np.random.default_rng(3)
    img = np.tile(np.linspace(40, 200, 64), (64, 1)).astype(np.uint8)  # smooth: noise shows
    assert ssim_index(img, img) == pytest.approx(1.0)
    noisy = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    assert ssim_index(img, noisy) < 0.95


def test_loss_pct():
    assert loss_pct(99, 1) == pytest.approx(1.0)
    assert loss_pct(0, 0) is None
    assert loss_pct(None, 3) is None
